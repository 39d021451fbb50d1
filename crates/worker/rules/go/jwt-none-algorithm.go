package auth

import (
	"github.com/golang-jwt/jwt/v5"
)

func parse(tok string, key []byte) (*jwt.Token, error) {
	return jwt.Parse(tok, func(t *jwt.Token) (any, error) {
		// ruleid: picket.go.jwt-none-algorithm
		return jwt.UnsafeAllowNoneSignatureType, nil
	})
}

func parseStrict(tok string, key []byte) (*jwt.Token, error) {
	// ok: picket.go.jwt-none-algorithm
	return jwt.Parse(tok, func(t *jwt.Token) (any, error) { return key, nil }, jwt.WithValidMethods([]string{"HS256"}))
}

func sign(claims jwt.MapClaims) (string, error) {
	// ruleid: picket.go.jwt-none-algorithm
	return jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
}
