import java.io.InputStream;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.SAXParserFactory;
import javax.xml.stream.XMLInputFactory;
import javax.xml.transform.TransformerFactory;
import org.w3c.dom.Document;

public class Xml {
    public Document parse(InputStream in) throws Exception {
        // ruleid: picket.java.xxe
        DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
        DocumentBuilder db = dbf.newDocumentBuilder();
        return db.parse(in);
    }

    public Document parseSafe(InputStream in) throws Exception {
        // ok: picket.java.xxe
        DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
        dbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        dbf.setXIncludeAware(false);
        return dbf.newDocumentBuilder().parse(in);
    }

    public void stax(InputStream in) throws Exception {
        // ruleid: picket.java.xxe
        XMLInputFactory xif = XMLInputFactory.newFactory();
        xif.createXMLStreamReader(in);
        // ok: picket.java.xxe
        XMLInputFactory safe = XMLInputFactory.newFactory();
        safe.setProperty(XMLInputFactory.SUPPORT_DTD, false);
        safe.createXMLStreamReader(in);
    }

    public void sax() throws Exception {
        // ruleid: picket.java.xxe
        SAXParserFactory spf = SAXParserFactory.newInstance();
        spf.newSAXParser();
        // ok: picket.java.xxe
        TransformerFactory tf = TransformerFactory.newInstance();
        tf.setAttribute(XMLConstants.ACCESS_EXTERNAL_DTD, "");
        tf.setAttribute(XMLConstants.ACCESS_EXTERNAL_STYLESHEET, "");
    }
}
