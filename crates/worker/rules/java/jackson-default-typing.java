import com.fasterxml.jackson.annotation.JsonTypeInfo;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.jsontype.BasicPolymorphicTypeValidator;
import com.fasterxml.jackson.databind.jsontype.impl.LaissezFaireSubTypeValidator;

public class Mappers {
    static class Envelope {
        // ruleid: picket.java.jackson-default-typing
        @JsonTypeInfo(use = JsonTypeInfo.Id.CLASS)
        public Object payload;

        // ok: picket.java.jackson-default-typing
        @JsonTypeInfo(use = JsonTypeInfo.Id.NAME)
        public Object named;
    }

    public ObjectMapper legacy() {
        ObjectMapper m = new ObjectMapper();
        // ruleid: picket.java.jackson-default-typing
        m.enableDefaultTyping();
        return m;
    }

    public ObjectMapper laissez() {
        ObjectMapper m = new ObjectMapper();
        // ruleid: picket.java.jackson-default-typing
        m.activateDefaultTyping(LaissezFaireSubTypeValidator.instance, ObjectMapper.DefaultTyping.NON_FINAL);
        return m;
    }

    public ObjectMapper restricted() {
        ObjectMapper m = new ObjectMapper();
        BasicPolymorphicTypeValidator ptv =
                BasicPolymorphicTypeValidator.builder().allowIfSubType("com.example.dto.").build();
        // ok: picket.java.jackson-default-typing
        m.activateDefaultTyping(ptv, ObjectMapper.DefaultTyping.NON_FINAL);
        return m;
    }
}
