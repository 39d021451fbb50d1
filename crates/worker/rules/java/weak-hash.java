import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.apache.commons.codec.digest.DigestUtils;

public class Digests {
    public byte[] password(String pw) throws NoSuchAlgorithmException {
        // ruleid: picket.java.weak-hash
        MessageDigest md = MessageDigest.getInstance("MD5");
        return md.digest(pw.getBytes(StandardCharsets.UTF_8));
    }

    public String token(String value) throws NoSuchAlgorithmException {
        // ruleid: picket.java.weak-hash
        MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
        // ruleid: picket.java.weak-hash
        String hex = DigestUtils.md5Hex(value);
        // ok: picket.java.weak-hash
        MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
        return hex + sha1.getAlgorithm() + sha256.getAlgorithm();
    }
}
