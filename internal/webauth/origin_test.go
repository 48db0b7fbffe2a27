package webauth

import (
	"errors"
	"net/http/httptest"
	"testing"
)

func TestCheckOrigin(t *testing.T) {
	tests := []struct {
		name, method string
		headers      map[string]string
		ok           bool
	}{
		{"GET from anywhere", "GET", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, true},
		{"HEAD from anywhere", "HEAD", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"no browser headers (curl)", "POST", nil, true},
		{"Sec-Fetch-Site same-origin", "POST", map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
		{"Sec-Fetch-Site none (typed by the user)", "POST", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"Sec-Fetch-Site same-site", "POST", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"Sec-Fetch-Site cross-site", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"Sec-Fetch-Site cross-site, Origin ours", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://pi:8080"}, false},
		{"Sec-Fetch-Site wins over Origin", "POST", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example"}, true},
		{"Origin ours", "POST", map[string]string{"Origin": "http://pi:8080"}, true},
		{"Origin elsewhere", "POST", map[string]string{"Origin": "http://evil.example"}, false},
		{"Origin on another port", "POST", map[string]string{"Origin": "http://pi:9090"}, false},
		{"Origin null (a sandboxed page)", "POST", map[string]string{"Origin": "null"}, false},
		{"Referer ours", "POST", map[string]string{"Referer": "http://pi:8080/"}, true},
		{"Referer elsewhere", "POST", map[string]string{"Referer": "http://evil.example/gate.html"}, false},
		{"DELETE from elsewhere", "DELETE", map[string]string{"Origin": "http://evil.example"}, false},
		{"PUT from elsewhere", "PUT", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://pi:8080/api/command", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			err := CheckOrigin(r)
			if tt.ok && err != nil {
				t.Errorf("got %v, want it let through", err)
			}
			if !tt.ok && !errors.Is(err, ErrCrossOrigin) {
				t.Errorf("got %v, want ErrCrossOrigin", err)
			}
		})
	}
}
