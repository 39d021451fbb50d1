// Maven's ComparableVersion (Debian's maven-artifact 3.8), for tests/advisory/differential.rs.
// Run as `java -cp maven-artifact.jar Compare.java`. stdin: `a<TAB>b` lines; stdout: one token a
// line, `-1`, `0` or `1` (the sign of compareTo; every string is a Maven version).
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.apache.maven.artifact.versioning.ComparableVersion;

public class Compare {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        String line;
        while ((line = in.readLine()) != null) {
            int tab = line.indexOf('\t');
            ComparableVersion a = new ComparableVersion(line.substring(0, tab));
            ComparableVersion b = new ComparableVersion(line.substring(tab + 1));
            out.append(Integer.signum(a.compareTo(b))).append('\n');
        }
        System.out.print(out);
        System.out.flush();
    }
}
