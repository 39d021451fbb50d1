import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import javax.persistence.EntityManager;
import org.springframework.jdbc.core.JdbcTemplate;

public class UserRepository {
    private final Connection conn;
    private final JdbcTemplate jdbc;
    private final EntityManager em;

    public UserRepository(Connection conn, JdbcTemplate jdbc, EntityManager em) {
        this.conn = conn;
        this.jdbc = jdbc;
        this.em = em;
    }

    public ResultSet byName(String name) throws SQLException {
        Statement st = conn.createStatement();
        // ruleid: picket.java.sql-injection
        return st.executeQuery("SELECT * FROM users WHERE name = '" + name + "'");
    }

    public List<Map<String, Object>> search(String term, String order) {
        String sql = String.format("SELECT id, name FROM users WHERE name LIKE '%%%s%%' ORDER BY %s", term, order);
        // ruleid: picket.java.sql-injection
        return jdbc.queryForList(sql);
    }

    public List<?> jpql(String role) {
        // ruleid: picket.java.sql-injection
        return em.createQuery("select u from User u where u.role = '" + role + "'").getResultList();
    }

    public int delete(long id) throws SQLException {
        // ruleid: picket.java.sql-injection
        PreparedStatement ps = conn.prepareStatement("DELETE FROM users WHERE id = " + id);
        return ps.executeUpdate();
    }

    public ResultSet safe(String name) throws SQLException {
        // ok: picket.java.sql-injection
        PreparedStatement ps = conn.prepareStatement("SELECT * FROM users WHERE name = ?");
        ps.setString(1, name);
        // ok: picket.java.sql-injection
        jdbc.queryForList("SELECT * FROM users WHERE name = ?", name);
        // ok: picket.java.sql-injection
        em.createQuery("select u from User u where u.role = :role").setParameter("role", name);
        // ok: picket.java.sql-injection
        jdbc.execute("SELECT * FROM users " + "WHERE active");
        return ps.executeQuery();
    }

    public String label(String name) {
        // ok: picket.java.sql-injection
        return jdbc.queryForObject("SELECT label FROM names WHERE id = 1", String.class) + name;
    }
}
