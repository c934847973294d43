package comfysim

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// dirByType is folder_paths.get_directory_by_type.
func (s *Server) dirByType(t string) (string, bool) {
	switch t {
	case "output":
		return s.outputDir, true
	case "input":
		return s.inputDir, true
	case "temp":
		return s.tempDir, true
	}
	return "", false
}

// annotatedFilepath is folder_paths.annotated_filepath: a name ending in
// "[output]", "[input]" or "[temp]" chooses the directory (the suffix and the
// space before it are cut). dirType is "" when there is no annotation.
func annotatedFilepath(name string) (string, string) {
	r := []rune(name)
	cut := func(n int) string {
		if n >= len(r) {
			return ""
		}
		return string(r[:len(r)-n])
	}
	switch {
	case strings.HasSuffix(name, "[output]"):
		return cut(9), "output"
	case strings.HasSuffix(name, "[input]"):
		return cut(8), "input"
	case strings.HasSuffix(name, "[temp]"):
		return cut(7), "temp"
	}
	return name, ""
}

// annotatedPath is get_annotated_filepath with the input directory as
// default. Unlike ComfyUI, paths leaving the directory are refused (ok false)
// so that a simulator never reads arbitrary files.
func (s *Server) annotatedPath(name string) (string, bool) {
	n, t := annotatedFilepath(name)
	base := s.inputDir
	if t != "" {
		base, _ = s.dirByType(t)
	}
	p := pyJoin(base, n)
	if !within(base, p) {
		return "", false
	}
	return p, true
}

// pyJoin is os.path.join for two parts: an absolute second part wins.
func pyJoin(a, b string) string {
	if strings.HasPrefix(b, "/") {
		return b
	}
	if a == "" || strings.HasSuffix(a, "/") {
		return a + b
	}
	return a + "/" + b
}

// within reports whether p (made absolute and normalised) is base or inside
// it: os.path.commonpath((base, abspath(p))) == base.
func within(base, p string) bool {
	abs, err := filepath.Abs(p)
	if err != nil {
		return false
	}
	return abs == base || strings.HasPrefix(abs, base+string(filepath.Separator))
}

// pyNormpath is posixpath.normpath.
func pyNormpath(p string) string {
	if p == "" {
		return "."
	}
	initial := 0
	if strings.HasPrefix(p, "/") {
		initial = 1
		if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
			initial = 2
		}
	}
	var comps []string
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		if c != ".." || (initial == 0 && len(comps) == 0) || (len(comps) > 0 && comps[len(comps)-1] == "..") {
			comps = append(comps, c)
		} else if len(comps) > 0 {
			comps = comps[:len(comps)-1]
		}
	}
	out := strings.Repeat("/", initial) + strings.Join(comps, "/")
	if out == "" {
		return "."
	}
	return out
}

// pyDirname is posixpath.dirname.
func pyDirname(p string) string {
	i := strings.LastIndex(p, "/") + 1
	head := p[:i]
	if head != "" && head != strings.Repeat("/", len(head)) {
		head = strings.TrimRight(head, "/")
	}
	return head
}

// pyBasename is posixpath.basename.
func pyBasename(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// savePath is folder_paths.get_save_image_path.
type savePath struct {
	folder    string // full output folder
	filename  string // base name before _%05d_
	counter   int
	subfolder string
}

func (s *Server) saveImagePath(prefix, outputDir string, width, height int) (savePath, error) {
	if strings.Contains(prefix, "%") {
		now := time.Now()
		r := strings.NewReplacer(
			"%width%", strconv.Itoa(width), "%height%", strconv.Itoa(height),
			"%year%", strconv.Itoa(now.Year()), "%month%", pad2(int(now.Month())), "%day%", pad2(now.Day()),
			"%hour%", pad2(now.Hour()), "%minute%", pad2(now.Minute()), "%second%", pad2(now.Second()))
		prefix = r.Replace(prefix)
	}
	norm := pyNormpath(prefix)
	sp := savePath{subfolder: pyDirname(norm), filename: pyBasename(norm)}
	sp.folder = pyJoin(outputDir, sp.subfolder)
	if !within(outputDir, sp.folder) {
		abs, _ := filepath.Abs(sp.folder)
		return sp, raise("Exception", "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: %s\n         output_dir: %s\n         commonpath: %s",
			abs, outputDir, commonPath(outputDir, abs))
	}
	key := counterKey{name: sp.filename, runes: len([]rune(pyBasename(prefix)))} // posixpath.normcase is the identity
	last, err := s.outputCounter(sp.folder, key)
	if err != nil {
		if err := os.MkdirAll(sp.folder, 0o755); err != nil {
			return sp, raise("OSError", "%v", err)
		}
	}
	sp.counter = 1
	if last.found {
		sp.counter = last.max + 1
	}
	return sp, nil
}

// runeOffset is the byte offset in s after its first n characters (len(s) when s
// is shorter).
func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

func pad2(i int) string {
	if i < 10 {
		return "0" + strconv.Itoa(i)
	}
	return strconv.Itoa(i)
}

func commonPath(a, b string) string {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	var out []string
	for i := 0; i < len(as) && i < len(bs) && as[i] == bs[i]; i++ {
		out = append(out, as[i])
	}
	p := strings.Join(out, "/")
	if p == "" {
		return "/"
	}
	return p
}

// outputCounter is the largest counter of the files named k in dir (os.listdir
// plus the virtual files of that directory), if any.
func (s *Server) outputCounter(dir string, k counterKey) (counterMemo, error) {
	abs, _ := filepath.Abs(dir)
	m, err := s.listings.saveCounter(abs, k)
	if err != nil {
		return m, err
	}
	s.vmu.Lock()
	for p := range s.virtual {
		if filepath.Dir(p) == abs {
			if d, match := k.counterOf(filepath.Base(p)); match {
				m.add(d)
			}
		}
	}
	s.vmu.Unlock()
	return m, nil
}
