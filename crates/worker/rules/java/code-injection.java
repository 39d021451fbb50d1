import javax.script.ScriptEngine;
import javax.script.ScriptEngineManager;
import javax.script.ScriptException;
import org.springframework.expression.Expression;
import org.springframework.expression.ExpressionParser;
import org.springframework.expression.spel.standard.SpelExpressionParser;

public class Rules {
    private final ExpressionParser parser = new SpelExpressionParser();

    public Object script(String code) throws ScriptException {
        ScriptEngine engine = new ScriptEngineManager().getEngineByName("javascript");
        // ruleid: picket.java.code-injection
        return engine.eval(code);
    }

    public Object spel(String filter) {
        // ruleid: picket.java.code-injection
        Expression e = parser.parseExpression("price > " + filter);
        // ok: picket.java.code-injection
        Expression fixed = parser.parseExpression("price > 10");
        return e.getValue().equals(fixed.getValue());
    }
}
