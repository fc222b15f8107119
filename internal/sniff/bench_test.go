package sniff

import (
	"crypto/tls"
	"testing"
	"time"
)

func BenchmarkPeekTLS(b *testing.B) {
	hello := clientHello(b, &tls.Config{ServerName: "api.example.com", NextProtos: []string{"h2", "http/1.1"}})
	benchmarkPeek(b, hello, KindTLS)
}

func BenchmarkPeekHTTP(b *testing.B) {
	head := []byte("GET /v1/messages?beta=true HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.5.0\r\n" +
		"Accept: */*\r\nContent-Type: application/json\r\nAuthorization: Bearer abcdefghijklmnopqrstuvwxyz\r\n\r\n")
	benchmarkPeek(b, head, KindHTTP)
}

// benchmarkPeek measures the classification alone: the bytes come from
// memory in one read, as they mostly do from a loopback socket.
func benchmarkPeek(b *testing.B, data []byte, want Kind) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		res, _, err := Peek(&chunkConn{data: data, chunk: len(data)}, time.Second)
		if err != nil || res.Kind != want {
			b.Fatalf("Peek: got %v, %v, want %v, nil", res.Kind, err, want)
		}
	}
}
