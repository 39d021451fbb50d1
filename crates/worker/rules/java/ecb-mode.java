import javax.crypto.Cipher;

public class Modes {
    public Cipher[] all() throws Exception {
        // ruleid: picket.java.ecb-mode
        Cipher implicit = Cipher.getInstance("AES");
        // ruleid: picket.java.ecb-mode
        Cipher explicit = Cipher.getInstance("AES/ECB/PKCS5Padding");
        // ok: picket.java.ecb-mode
        Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
        // ok: picket.java.ecb-mode
        Cipher rsa = Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding");
        return new Cipher[] {implicit, explicit, gcm, rsa};
    }
}
