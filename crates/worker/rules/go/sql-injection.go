package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"

	"gorm.io/gorm"
)

type User struct{ Name string }

func find(ctx context.Context, db *sql.DB, r *http.Request) error {
	id := r.URL.Query().Get("id")
	// ruleid: picket.go.sql-injection
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT * FROM users WHERE id = %s", id))
	if err != nil {
		return err
	}
	defer rows.Close()
	q := "DELETE FROM sessions WHERE user_id = '" + id + "'"
	// ruleid: picket.go.sql-injection
	if _, err := db.Exec(q); err != nil {
		return err
	}
	// ok: picket.go.sql-injection
	row := db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = $1", id)
	// ok: picket.go.sql-injection
	all, err := db.Query(fmt.Sprintf("SELECT * FROM %s", "users"))
	_ = all
	return row.Err()
}

func search(db *gorm.DB, name string) []User {
	var users []User
	// ruleid: picket.go.sql-injection
	db.Where(fmt.Sprintf("name LIKE '%%%s%%' ORDER BY id", name)).Find(&users)
	// ok: picket.go.sql-injection
	db.Where("name = ?", name).Find(&users)
	// ruleid: picket.go.sql-injection
	db.Raw("SELECT * FROM users WHERE name = '" + name + "'").Scan(&users)
	return users
}

func label(name string) string {
	// ok: picket.go.sql-injection
	return fmt.Sprintf("hello %s", name)
}
