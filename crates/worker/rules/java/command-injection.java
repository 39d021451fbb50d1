import java.io.IOException;
import java.util.List;

public class Thumbnails {
    public Process resize(String file) throws IOException {
        // ruleid: picket.java.command-injection
        return Runtime.getRuntime().exec("convert " + file + " -resize 64x64 thumb.png");
    }

    public Process archive(String dir) throws IOException {
        // ruleid: picket.java.command-injection
        return new ProcessBuilder("sh", "-c", "tar czf /tmp/out.tgz " + dir).start();
    }

    public Process list(String dir) throws IOException {
        // ruleid: picket.java.command-injection
        return Runtime.getRuntime().exec(new String[] {"/bin/bash", "-c", "ls " + dir});
    }

    public Process fmt(String host) throws IOException {
        Runtime rt = Runtime.getRuntime();
        // ruleid: picket.java.command-injection
        return rt.exec(String.format("ping -c 1 %s", host));
    }

    public Process safe(String file) throws IOException {
        // ok: picket.java.command-injection
        new ProcessBuilder("convert", file, "-resize", "64x64", "thumb.png").start();
        // ok: picket.java.command-injection
        new ProcessBuilder(List.of("sh", "-c", "make clean")).start();
        // ok: picket.java.command-injection
        return Runtime.getRuntime().exec(new String[] {"convert", file, "thumb.png"});
    }
}
