const mysql = require("mysql2");
const knex = require("knex")({ client: "pg" });

const pool = mysql.createPool({ host: "db" });

async function findUser(req, res) {
  const id = req.params.id;
  // ruleid: picket.javascript.sql-injection
  const [rows] = await pool.query(`SELECT * FROM users WHERE id = ${id}`);
  // ruleid: picket.javascript.sql-injection
  await pool.execute("SELECT * FROM users WHERE name = '" + req.query.name + "'");
  const sql = "DELETE FROM sessions WHERE user_id = " + id;
  // ruleid: picket.javascript.sql-injection
  await pool.query(sql);
  // ruleid: picket.javascript.sql-injection
  const list = await knex("users").whereRaw(`name LIKE '%${req.query.q}%' ORDER BY id`);
  // ok: picket.javascript.sql-injection
  await pool.query("SELECT * FROM users WHERE id = ?", [id]);
  // ok: picket.javascript.sql-injection
  await knex("users").whereRaw("name = ?", [req.query.name]);
  // ok: picket.javascript.sql-injection
  await pool.query(`SELECT * FROM users`);
  // ok: picket.javascript.sql-injection
  await client.query(`query { user(id: "${id}") { name } }`);
  res.json({ rows, list });
}

function tagged(db, id) {
  // ok: picket.javascript.sql-injection
  return db.query(sql`SELECT * FROM users WHERE id = ${id}`);
}
