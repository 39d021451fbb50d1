import com.thoughtworks.xstream.XStream;
import java.beans.XMLDecoder;
import java.io.InputStream;
import java.io.ObjectInputFilter;
import java.io.ObjectInputStream;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

public class Restore {
    public Object session(InputStream body) throws Exception {
        ObjectInputStream in = new ObjectInputStream(body);
        // ruleid: picket.java.unsafe-deserialization
        return in.readObject();
    }

    public Object filtered(InputStream body) throws Exception {
        ObjectInputStream in = new ObjectInputStream(body);
        in.setObjectInputFilter(ObjectInputFilter.Config.createFilter("com.example.dto.*;!*"));
        // ok: picket.java.unsafe-deserialization
        return in.readObject();
    }

    public Object beans(InputStream body) {
        XMLDecoder decoder = new XMLDecoder(body);
        // ruleid: picket.java.unsafe-deserialization
        return decoder.readObject();
    }

    public Object xstream(String xml) {
        XStream xs = new XStream();
        // ruleid: picket.java.unsafe-deserialization
        return xs.fromXML(xml);
    }

    public Object xstreamAllowed(String xml) {
        XStream xs = new XStream();
        xs.allowTypes(new Class[] {Restore.class});
        // ok: picket.java.unsafe-deserialization
        return xs.fromXML(xml);
    }

    public Object yaml(String doc) {
        Yaml yaml = new Yaml();
        // ruleid: picket.java.unsafe-deserialization
        return yaml.load(doc);
    }

    public Object safeYaml(String doc) {
        Yaml yaml = new Yaml(new SafeConstructor(new org.yaml.snakeyaml.LoaderOptions()));
        // ok: picket.java.unsafe-deserialization
        return yaml.load(doc);
    }
}
