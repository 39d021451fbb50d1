import java.io.InputStream;
import java.net.URL;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.client.RestTemplate;

@RestController
public class PreviewController {
    private final RestTemplate rest = new RestTemplate();

    @GetMapping("/preview")
    public String preview(@RequestParam("url") String url) {
        // ruleid: picket.java.ssrf
        return rest.getForObject(url, String.class);
    }

    @GetMapping("/fetch")
    public InputStream fetch(@RequestParam String host) throws Exception {
        // ruleid: picket.java.ssrf
        return new URL("http://" + host + "/status").openStream();
    }

    @GetMapping("/user")
    public String user(@RequestParam String id) {
        // ok: picket.java.ssrf
        return rest.getForObject("https://api.example.com/users/" + id, String.class);
    }
}
