import org.springframework.context.annotation.Bean;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.config.annotation.web.configurers.AbstractHttpConfigurer;
import org.springframework.security.web.SecurityFilterChain;
import org.springframework.security.web.csrf.CookieCsrfTokenRepository;

public class SecurityConfig {
    @Bean
    public SecurityFilterChain chain(HttpSecurity http) throws Exception {
        // ruleid: picket.java.spring-csrf-disabled
        http.csrf(AbstractHttpConfigurer::disable);
        return http.build();
    }

    public SecurityFilterChain lambda(HttpSecurity http) throws Exception {
        // ruleid: picket.java.spring-csrf-disabled
        http.authorizeHttpRequests(a -> a.anyRequest().authenticated()).csrf(csrf -> csrf.disable());
        return http.build();
    }

    public SecurityFilterChain legacy(HttpSecurity http) throws Exception {
        // ruleid: picket.java.spring-csrf-disabled
        http.csrf().disable().httpBasic();
        return http.build();
    }

    public SecurityFilterChain spa(HttpSecurity http) throws Exception {
        // ok: picket.java.spring-csrf-disabled
        http.csrf(csrf -> csrf.csrfTokenRepository(CookieCsrfTokenRepository.withHttpOnlyFalse()));
        return http.build();
    }
}
