package httpx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Money is an amount in cents, so sums are exact. It is a JSON number with
// two decimals (609.97) and a NUMERIC(12,2) in PostgreSQL.
type Money int64

// maxMoney keeps amounts inside NUMERIC(12,2).
const maxMoney = Money(9_999_999_999_99)

// ParseMoney reads a decimal number, rounded to the cent.
func ParseMoney(s string) (Money, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	cents := math.Round(f * 100)
	if math.Abs(cents) > float64(maxMoney) {
		return 0, errors.New("amount too large")
	}
	return Money(cents), nil
}

func (m Money) String() string {
	sign := ""
	cents := int64(m)
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

// MarshalJSON writes the amount as a number with two decimals.
func (m Money) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalJSON reads a JSON number.
func (m *Money) UnmarshalJSON(data []byte) error {
	parsed, err := ParseMoney(string(data))
	if err != nil {
		return fmt.Errorf("reading money amount: %w", err)
	}
	*m = parsed
	return nil
}

// NewObjectID is a random 24-hex-character id, the shape the shop's product
// and order ids have always had.
func NewObjectID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	return hex.EncodeToString(b[:])
}

// IsObjectID tells whether s is 24 hexadecimal characters.
func IsObjectID(s string) bool {
	if len(s) != 24 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
