import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;

public class Ciphers {
    public Cipher[] all() throws Exception {
        // ruleid: picket.java.weak-cipher
        Cipher des = Cipher.getInstance("DES/CBC/PKCS5Padding");
        // ruleid: picket.java.weak-cipher
        Cipher triple = Cipher.getInstance("DESede/CBC/PKCS5Padding");
        // ruleid: picket.java.weak-cipher
        KeyGenerator rc4 = KeyGenerator.getInstance("RC4");
        // ok: picket.java.weak-cipher
        Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
        rc4.init(128);
        return new Cipher[] {des, triple, gcm};
    }
}
