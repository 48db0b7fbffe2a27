package state

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The state package listens to the gate like a link but knows none of the
// daemon's other parts, so that it can never block or be blocked by them.
func TestImportsNoOtherPart(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{
		"rocksaying.tw/gated/internal/gate", "rocksaying.tw/gated/internal/mqttlink",
		"rocksaying.tw/gated/internal/dbuslink", "github.com/coreos/go-systemd",
		"github.com/godbus/", "github.com/eclipse/paho",
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, p := range forbidden {
				if strings.HasPrefix(path, p) {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}
