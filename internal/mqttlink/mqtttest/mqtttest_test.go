package mqtttest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recTB records how a helper ended the test.
type recTB struct {
	testing.TB
	fatal, skip string
}

func (r *recTB) Helper()                   {}
func (r *recTB) Fatal(args ...any)         { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recTB) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...); runtime.Goexit() }
func (r *recTB) Skip(args ...any)          { r.skip = fmt.Sprint(args...); runtime.Goexit() }
func (r *recTB) Skipf(f string, a ...any)  { r.skip = fmt.Sprintf(f, a...); runtime.Goexit() }

func TestMissingMosquitto(t *testing.T) {
	saved := mosquittoPaths
	mosquittoPaths = []string{"/nonexistent/mosquitto"}
	t.Cleanup(func() { mosquittoPaths = saved })
	for _, tt := range []struct{ ci, wantFatal, wantSkip bool }{{true, true, false}, {false, false, true}} {
		t.Run(fmt.Sprintf("CI=%v", tt.ci), func(t *testing.T) {
			t.Setenv("CI", map[bool]string{true: "true", false: ""}[tt.ci])
			r := &recTB{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); Binary(r) }()
			<-done
			if (r.fatal != "") != tt.wantFatal || (r.skip != "") != tt.wantSkip {
				t.Errorf("fatal %q skip %q; want fatal %v skip %v", r.fatal, r.skip, tt.wantFatal, tt.wantSkip)
			}
			if msg := r.fatal + r.skip; !strings.Contains(msg, "mosquitto") {
				t.Errorf("message %q does not say what is missing", msg)
			}
		})
	}
}

func TestStartAndRestart(t *testing.T) {
	b := Start(t, Options{})
	c := Connect(t, b.URL)
	c.PublishRetained("t/x", []byte("1"))
	b.Restart()
	c2 := Connect(t, b.URL) // same port after a restart
	c2.Publish("t/x", []byte("2"))
}
