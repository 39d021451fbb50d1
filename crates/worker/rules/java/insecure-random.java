import java.security.SecureRandom;
import java.util.Base64;
import java.util.Random;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.commons.lang3.RandomStringUtils;

public class Tokens {
    private final Random random = new Random();
    private final SecureRandom secure = new SecureRandom();

    public String resetToken() {
        // ruleid: picket.java.insecure-random
        return Long.toHexString(random.nextLong());
    }

    public String issue() {
        // ruleid: picket.java.insecure-random
        String apiKey = RandomStringUtils.randomAlphanumeric(32);
        // ruleid: picket.java.insecure-random
        int otp = ThreadLocalRandom.current().nextInt(100000, 999999);
        // ok: picket.java.insecure-random
        int backoffMillis = random.nextInt(500);
        byte[] bytes = new byte[32];
        secure.nextBytes(bytes);
        // ok: picket.java.insecure-random
        String sessionToken = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
        return apiKey + otp + backoffMillis + sessionToken;
    }

    public String generatePassword() {
        // ok: picket.java.insecure-random
        byte[] b = new byte[16];
        secure.nextBytes(b);
        return Base64.getEncoder().encodeToString(b);
    }
}
