// Command verify checks a capframe token with a standard COSE library (go-cose),
// outside capframe.
//
//	verify --key KEY TOKEN
//
// TOKEN is a printable token (cf1.…), or - to read it from standard input (keeps it
// out of ps and shell history). KEY is where the issuer's public key comes from:
//
//   - 64 hex characters: the raw Ed25519 public key (`capframe keys public` prints it);
//   - a file holding a JWK or a JWK Set (`capframe keys public --json > keys.json`);
//   - an https:// URL of a JWK Set, e.g. a running `capframe serve`'s
//     /.well-known/capframe-keys (plain http:// only for localhost).
//
// The key is chosen by the kid in the token's protected header. Exit status: 0 and
// one "OK …" line for a token that verifies; 2 and "DENIED <code>: <reason>" for one
// that does not; 1 for a usage error (bad key source, unreadable file).
//
// What this checks: the COSE_Sign1 signature (EdDSA / Ed25519) with go-cose, the claim
// types, exp and nbf. What it does NOT check: the token's tool against a call, the
// `when` argument constraints, revocation, holder proofs (cnf) or delegation chains
// (prf) -- it refuses tokens with cnf or prf rather than half-check them. For the full
// decision use `capframe verify` or the AuthZEN endpoint of `capframe serve`.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

const (
	prefix         = "cf1."
	maxTokenBytes  = 8192 // capframe rejects larger tokens before anything else
	maxKeysBytes   = 1 << 20
	defaultLeeway  = 60 // seconds a clock behind the issuer's may be, for nbf only
	exitOK         = 0
	exitUsage      = 1
	exitDenied     = 2
	safeValueChars = `^[A-Za-z0-9._*:@/+-]+$`
	maxISOSeconds  = 253402300799 // 9999-12-31T23:59:59Z; later times print as seconds
)

// denied is a verification failure: a stable code and a sentence for people.
type denied struct{ code, reason string }

func (d *denied) Error() string { return d.code + ": " + d.reason }

func deny(code, format string, args ...any) error {
	return &denied{code, fmt.Sprintf(format, args...)}
}

// keyID is capframe's kid: the first 8 bytes of SHA-256 of the raw public key.
func keyID(pub []byte) string {
	sum := sha256.Sum256(pub)
	return string(sum[:8])
}

// --- key sources ---------------------------------------------------------------------

var hexKey = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// loadKeys returns the trusted keys by kid, from hex, a JWK / JWK Set file, or a URL.
func loadKeys(source string) (map[string]ed25519.PublicKey, error) {
	if hexKey.MatchString(source) {
		raw, _ := hex.DecodeString(source)
		return map[string]ed25519.PublicKey{keyID(raw): raw}, nil
	}
	var text []byte
	var err error
	if strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://") {
		text, err = fetch(source)
	} else {
		text, err = readLimited(source)
	}
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(text, &doc); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", source, err)
	}
	entries := []json.RawMessage{text}
	if rawKeys, ok := doc["keys"]; ok {
		if err := json.Unmarshal(rawKeys, &entries); err != nil {
			return nil, fmt.Errorf("%s: \"keys\" is not an array: %w", source, err)
		}
	}
	keys := map[string]ed25519.PublicKey{}
	for i, entry := range entries {
		pub, err := jwkPublicKey(entry)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d: %w", source, i, err)
		}
		if pub != nil {
			keys[keyID(pub)] = pub
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no Ed25519 (OKP) signing key in it", source)
	}
	return keys, nil
}

type jwk struct {
	Kty string  `json:"kty"`
	Crv string  `json:"crv"`
	X   string  `json:"x"`
	D   *string `json:"d"`
	Kid *string `json:"kid"`
	Alg *string `json:"alg"`
	Use *string `json:"use"`
}

// jwkPublicKey is the raw key of an Ed25519 JWK (RFC 8037), or nil for another kind.
func jwkPublicKey(entry json.RawMessage) (ed25519.PublicKey, error) {
	var k jwk
	if err := json.Unmarshal(entry, &k); err != nil {
		return nil, nil // not an object we understand: not one of ours
	}
	if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Alg != nil && *k.Alg != "EdDSA") || (k.Use != nil && *k.Use != "sig") {
		return nil, nil
	}
	if k.D != nil {
		return nil, errors.New("this JWK holds a private key; give the public key only")
	}
	x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, errors.New("JWK x must be base64url of a 32-byte Ed25519 key")
	}
	if want := base64.RawURLEncoding.EncodeToString([]byte(keyID(x))); k.Kid != nil && *k.Kid != want {
		// capframe derives kid from the key; a set where they disagree is broken or forged.
		return nil, fmt.Errorf("JWK kid %q does not match its key (expected %s)", *k.Kid, want)
	}
	return x, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--key: not 64 hex characters, a URL, or a readable file: %w", err)
	}
	defer f.Close()
	return limited(f, path)
}

func limited(r io.Reader, where string) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxKeysBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", where, err)
	}
	if len(body) > maxKeysBytes {
		return nil, fmt.Errorf("%s: key set larger than %d bytes", where, maxKeysBytes)
	}
	return body, nil
}

func fetch(raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--key: bad URL: %w", err)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		// Whoever can alter the answer could hand us their own key: insist on TLS.
		return nil, fmt.Errorf("refusing to fetch keys over plain http from %s; use https", u.Hostname())
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		// A redirect could lead to http or elsewhere: fail instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(raw)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch %s: %w", raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot fetch %s: HTTP %d", raw, resp.StatusCode)
	}
	return limited(resp.Body, raw)
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// --- the token -----------------------------------------------------------------------

type claims struct {
	iss, tool string
	sub, cap  *string // absent when the token names no agent or capability
	exp, nbf  uint64
	hasNbf    bool
	cti       []byte
	when      []any
}

// claimsMode decodes the payload strictly: no duplicate keys, no indefinite lengths,
// no tags, bounded nesting.
var claimsMode = func() cbor.DecMode {
	mode, err := cbor.DecOptions{
		DupMapKey:       cbor.DupMapKeyEnforcedAPF,
		IndefLength:     cbor.IndefLengthForbidden,
		TagsMd:          cbor.TagsForbidden,
		MaxNestedLevels: 16,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return mode
}()

// decodeToken returns the COSE_Sign1 message, checked for capframe's header shape.
func decodeToken(printable string) (*cose.Sign1Message, []byte, error) {
	if !strings.HasPrefix(printable, prefix) {
		return nil, nil, deny("malformed_token", "not a capframe token (expected cf1.<base64url>)")
	}
	if len(printable) > len(prefix)+(maxTokenBytes*4+2)/3 {
		return nil, nil, deny("malformed_token", "token is larger than 8 KiB")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(printable[len(prefix):])
	if err != nil {
		return nil, nil, deny("malformed_token", "not a capframe token (expected cf1.<base64url>)")
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(raw); err != nil {
		return nil, nil, deny("malformed_token", "not a COSE_Sign1 message: %v", err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if len(msg.Headers.Protected) != 2 || len(msg.Headers.Unprotected) != 0 || err != nil {
		return nil, nil, deny("malformed_token", "token has an unexpected COSE header (expected protected {alg, kid} only)")
	}
	if alg != cose.AlgorithmEdDSA {
		return nil, nil, deny("malformed_token", "token algorithm is not EdDSA")
	}
	kid, ok := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte)
	if !ok || len(kid) != 8 {
		return nil, nil, deny("malformed_token", "token kid is not 8 bytes")
	}
	return &msg, kid, nil
}

func decodeClaims(payload []byte) (*claims, error) {
	var m map[any]any
	if err := claimsMode.Unmarshal(payload, &m); err != nil {
		return nil, deny("malformed_token", "claims are not a CBOR map: %v", err)
	}
	c := &claims{}
	var seen = map[any]bool{}
	var prf, cnf bool
	for key, value := range m {
		ok := true
		switch key {
		case uint64(1), uint64(2), uint64(3), "tool", "cap":
			var s string
			s, ok = value.(string)
			switch key {
			case uint64(1):
				c.iss = s
			case uint64(2):
				c.sub = &s
			case "tool":
				c.tool = s
			case "cap":
				c.cap = &s
			}
		case uint64(4), uint64(5), uint64(6):
			var n uint64
			n, ok = value.(uint64)
			switch key {
			case uint64(4):
				c.exp = n
			case uint64(5):
				c.nbf, c.hasNbf = n, true
			}
		case uint64(7):
			c.cti, ok = value.([]byte)
		case uint64(8):
			_, ok = value.(map[any]any)
			cnf = true
		case "when":
			c.when, ok = value.([]any)
		case "prf":
			_, ok = value.([]byte)
			prf = true
		default:
			// An unknown claim could be a restriction we would silently ignore.
			return nil, deny("malformed_token", "token has an unknown claim %v", key)
		}
		if !ok {
			return nil, deny("malformed_token", "claim %v has the wrong type", key)
		}
		seen[key] = true
	}
	for _, key := range []any{uint64(1), uint64(4), uint64(6), uint64(7), "tool"} {
		if !seen[key] {
			return nil, deny("malformed_token", "token lacks the required claim %v", key)
		}
	}
	if len(c.cti) != 16 || c.tool == "" {
		return nil, deny("malformed_token", "token has a malformed cti or tool")
	}
	if prf {
		return nil, deny("unsupported", "delegated token (prf): this program does not walk delegation chains; use `capframe verify` or the AuthZEN endpoint")
	}
	if cnf {
		return nil, deny("unsupported", "holder-bound token (cnf): it is valid only with a holder proof, which this program does not check; use `capframe verify` or the AuthZEN endpoint")
	}
	return c, nil
}

func verify(printable string, keys map[string]ed25519.PublicKey, leeway, now uint64) (*claims, error) {
	msg, kid, err := decodeToken(printable)
	if err != nil {
		return nil, err
	}
	c, err := decodeClaims(msg.Payload)
	if err != nil {
		return nil, err
	}
	pub, ok := keys[string(kid)]
	if !ok {
		return nil, deny("unknown_key", "token is signed by key %x, which is not among the given keys", kid)
	}
	verifier, err := cose.NewVerifier(cose.AlgorithmEdDSA, pub)
	if err != nil {
		return nil, deny("unknown_key", "cannot use key %x: %v", kid, err)
	}
	if err := msg.Verify(nil, verifier); err != nil {
		return nil, deny("bad_signature", "signature does not verify")
	}
	if now >= c.exp {
		return nil, deny("expired", "token expired at %s", iso(c.exp))
	}
	if c.hasNbf && now+leeway < c.nbf {
		return nil, deny("not_yet_valid", "token is not valid before %s", iso(c.nbf))
	}
	return c, nil
}

func iso(seconds uint64) string {
	if seconds > maxISOSeconds {
		return strconv.FormatUint(seconds, 10)
	}
	return time.Unix(int64(seconds), 0).UTC().Format("2006-01-02T15:04:05Z")
}

var safeValue = regexp.MustCompile(safeValueChars)

// shown is a claim value safe to print on one line; "-" when it is absent.
func shown(value *string) string {
	if value == nil {
		return "-"
	}
	if safeValue.MatchString(*value) {
		return *value
	}
	return strconv.QuoteToASCII(*value)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("verify", flag.ContinueOnError)
	flags.SetOutput(stderr)
	key := flags.String("key", "", "issuer public key: 64 hex chars, a JWK / JWK Set file, or a JWK Set URL")
	leeway := flags.Uint64("leeway", defaultLeeway, "seconds of clock skew allowed for nbf")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: verify --key KEY [--leeway SECONDS] TOKEN   (TOKEN is cf1.… or - for standard input)")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	if *key == "" || flags.NArg() != 1 {
		flags.Usage()
		return exitUsage
	}
	keys, err := loadKeys(*key)
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return exitUsage
	}
	printable := flags.Arg(0)
	if printable == "-" {
		in, err := io.ReadAll(io.LimitReader(stdin, 2*maxTokenBytes))
		if err != nil {
			fmt.Fprintf(stderr, "verify: cannot read standard input: %v\n", err)
			return exitUsage
		}
		printable = string(bytes.TrimSpace(in))
	}
	c, err := verify(strings.TrimSpace(printable), keys, *leeway, uint64(time.Now().Unix()))
	var d *denied
	if errors.As(err, &d) {
		fmt.Fprintf(stdout, "DENIED %s: %s\n", d.code, d.reason)
		return exitDenied
	}
	fmt.Fprintf(stdout, "OK tok_%s iss=%s sub=%s tool=%s cap=%s exp=%s\n",
		base64.RawURLEncoding.EncodeToString(c.cti), shown(&c.iss), shown(c.sub), shown(&c.tool), shown(c.cap), iso(c.exp))
	if c.when != nil {
		fmt.Fprintf(stderr, "note: %d `when` constraint(s) on call arguments were not checked\n", len(c.when))
	}
	return exitOK
}
