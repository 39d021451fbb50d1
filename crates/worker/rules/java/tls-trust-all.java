import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.security.cert.X509Certificate;
import javax.net.ssl.HostnameVerifier;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import org.apache.http.conn.ssl.NoopHostnameVerifier;

public class InsecureClient {
    static class TrustAll implements X509TrustManager {
        public void checkClientTrusted(X509Certificate[] chain, String authType) { }

        // ruleid: picket.java.tls-trust-all
        public void checkServerTrusted(X509Certificate[] chain, String authType) { }

        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }

    public void install() throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] {new TrustAll()}, null);
        HttpsURLConnection.setDefaultSSLSocketFactory(ctx.getSocketFactory());
        // ruleid: picket.java.tls-trust-all
        HttpsURLConnection.setDefaultHostnameVerifier((host, session) -> true);
        HttpsURLConnection.setDefaultHostnameVerifier(new HostnameVerifier() {
            // ruleid: picket.java.tls-trust-all
            public boolean verify(String host, javax.net.ssl.SSLSession session) { return true; }
        });
        // ruleid: picket.java.tls-trust-all
        Object v = NoopHostnameVerifier.INSTANCE;
        // ruleid: picket.java.tls-trust-all
        Object f = InsecureTrustManagerFactory.INSTANCE;
    }

    static class Pinning implements X509TrustManager {
        public void checkClientTrusted(X509Certificate[] chain, String authType) { }

        // ok: picket.java.tls-trust-all
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws java.security.cert.CertificateException {
            if (!chain[0].getSubjectX500Principal().getName().equals("CN=api.example.com")) {
                throw new java.security.cert.CertificateException("unexpected server");
            }
        }

        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }
}

class Unrelated {
    // ok: picket.java.tls-trust-all
    java.util.function.BiPredicate<String, String> any = (a, b) -> true;
}
