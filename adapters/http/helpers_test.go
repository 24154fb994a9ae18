package httpadapter_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	httpadapter "github.com/sluicehq/sluice/adapters/http"
)

// startSource builds an http source on a free loopback port with raw as its
// configuration (address defaults to 127.0.0.1:0) and connects it.
func startSource(t *testing.T, raw map[string]any, res adapters.Resources) *httpadapter.Source {
	t.Helper()
	if _, ok := raw["address"]; !ok {
		raw["address"] = "127.0.0.1:0"
	}
	conf, err := adapters.Decode(httpadapter.SourceSpec, raw, adapters.DecodeOptions{Path: "source"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Logger == nil {
		res.Logger = adaptertest.Logger(t)
	}
	if res.Name == "" {
		res.Pipeline, res.Name = "test", "api"
	}
	src, err := adapters.NewSource("http", conf, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return src.(*httpadapter.Source)
}

func baseURL(s *httpadapter.Source, scheme string) string {
	return scheme + "://" + s.Addr().String()
}

// engine plays the pipeline engine for a source: it reads batches and acks
// them with ack's answer, keeping the messages.
type engine struct {
	mu      sync.Mutex
	msgs    []adapters.Message
	batches int
	stop    context.CancelFunc
	done    chan struct{}
}

func runEngine(t *testing.T, src adapters.Source, ack func(b adapters.Batch) error) *engine {
	ctx, cancel := context.WithCancel(context.Background())
	e := &engine{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		for {
			b, err := src.Read(ctx)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.msgs = append(e.msgs, b.Messages...)
			e.batches++
			e.mu.Unlock()
			var aerr error
			if ack != nil {
				aerr = ack(b)
			}
			_ = b.Ack(ctx, aerr)
		}
	}()
	t.Cleanup(func() { cancel(); <-e.done })
	return e
}

func (e *engine) messages() []adapters.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]adapters.Message(nil), e.msgs...)
}

// answer is a decoded response.
type answer struct {
	Status     int
	RetryAfter string
	Body       map[string]any
}

func do(t *testing.T, client *http.Client, method, url, body string, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &a.Body); err != nil {
			t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, data)
		}
	}
	return a
}

func post(t *testing.T, url, body string, headers map[string]string) answer {
	t.Helper()
	return do(t, nil, http.MethodPost, url, body, headers)
}

// pki is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files in a temp dir.
type pki struct {
	dir                       string
	caFile, certFile, keyFile string
	clientCert, clientKey     string
	pool                      *x509.CertPool
	clientPair                tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, server bool) ([]byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
		if server {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	p := &pki{dir: dir, caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key"),
		clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client.key"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	write := func(name string, b []byte) {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	c, k := issue(2, true)
	write(p.certFile, c)
	write(p.keyFile, k)
	c, k = issue(3, false)
	write(p.clientCert, c)
	write(p.clientKey, k)
	if p.clientPair, err = tls.X509KeyPair(c, k); err != nil {
		t.Fatal(err)
	}
	return p
}

var errNack = errors.New("enqueue failed: queue closed")

func writeFile(name, content string) error { return os.WriteFile(name, []byte(content), 0o600) }
