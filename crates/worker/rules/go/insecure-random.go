package auth

import (
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand"
	"time"
)

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

type Session struct {
	ID    string
	Token int64
}

func issue() (string, Session) {
	// ruleid: picket.go.insecure-random
	resetCode := fmt.Sprintf("%06d", rand.Intn(1000000))
	// ruleid: picket.go.insecure-random
	s := Session{ID: "s1", Token: rand.Int63()}
	// ok: picket.go.insecure-random
	jitter := time.Duration(rand.Intn(500)) * time.Millisecond
	time.Sleep(jitter)
	return resetCode, s
}

func generateAPIToken(n int) string {
	b := make([]byte, n)
	for i := range b {
		// ruleid: picket.go.insecure-random
		b[i] = letters[rand.Intn(len(letters))]
	}
	return string(b)
}

func secureToken() (string, error) {
	b := make([]byte, 32)
	// ok: picket.go.insecure-random
	if _, err := crand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func shuffle(xs []int) {
	// ok: picket.go.insecure-random
	rand.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
}
