import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import javax.servlet.http.HttpServletRequest;
import org.springframework.core.io.FileSystemResource;
import org.springframework.core.io.Resource;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

@RestController
public class FilesController {
    private static final Path BASE = Paths.get("/srv/files");

    @GetMapping("/files/{name}")
    public Resource download(@PathVariable("name") String name) {
        // ruleid: picket.java.path-traversal
        return new FileSystemResource(BASE.resolve(name));
    }

    @GetMapping("/raw")
    public byte[] raw(@RequestParam String file) throws IOException {
        // ruleid: picket.java.path-traversal
        return Files.readAllBytes(Paths.get("/srv/files", file));
    }

    public FileInputStream legacy(HttpServletRequest request) throws IOException {
        String name = request.getParameter("name");
        // ruleid: picket.java.path-traversal
        return new FileInputStream(new File("/srv/files/" + name));
    }

    @GetMapping("/safe")
    public byte[] safe(@RequestParam String file) throws IOException {
        // ok: picket.java.path-traversal
        Path p = BASE.resolve(Paths.get(file).getFileName());
        // ok: picket.java.path-traversal
        byte[] fixed = Files.readAllBytes(BASE.resolve("index.html"));
        return Files.readAllBytes(p);
    }
}
