package comfysim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// SetNodeUI makes every later execution of the nodes with that id or class
// report ui as its UI output (executed and history), until ClearNodeUI: the
// shapes custom nodes produce, which no simulated class does. For example
// VideoHelperSuite's {"gifs": [{"filename", "subfolder", "type", "format",
// "frame_rate"}]}, an "animated" flag, 3D files given as bare strings
// ({"result": ["mesh.glb", {...}]}) or {"text": ["…"]}. ui must encode as a
// JSON object. Files it names are served by /view only if they exist: write
// them with WriteOutputFile.
func (s *Server) SetNodeUI(classOrID string, ui any) error {
	b, err := json.Marshal(ui)
	if err != nil {
		return fmt.Errorf("comfysim: SetNodeUI: %w", err)
	}
	v, err := decodeJSONBytes(b)
	if err != nil {
		return fmt.Errorf("comfysim: SetNodeUI: %w", err)
	}
	o, ok := v.(*object)
	if !ok {
		return fmt.Errorf("comfysim: SetNodeUI: ui is not a JSON object")
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.nodeUI == nil {
		s.nodeUI = map[string]*object{}
	}
	s.nodeUI[classOrID] = o
	return nil
}

// ClearNodeUI removes every SetNodeUI override.
func (s *Server) ClearNodeUI() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.nodeUI = nil
}

// WriteOutputFile writes a file under output/ (subfolder may be ""), for the
// files a SetNodeUI output names.
func (s *Server) WriteOutputFile(subfolder, name string, data []byte) error {
	dir := filepath.Join(s.outputDir, filepath.FromSlash(subfolder))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("comfysim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o644); err != nil {
		return fmt.Errorf("comfysim: %w", err)
	}
	return nil
}

func (s *Server) uiFor(nodeID, class string) *object {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if o := s.nodeUI[nodeID]; o != nil {
		return copyObject(o)
	}
	if o := s.nodeUI[class]; o != nil {
		return copyObject(o)
	}
	return nil
}
