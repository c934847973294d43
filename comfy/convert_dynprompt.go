package comfy

import (
	"math/rand/v2"
	"regexp"
	"strings"
)

var uiCommentRE = regexp.MustCompile(`/\*[\s\S]*?\*/|//[^\n\r\x{2028}\x{2029}]*`)
var uiEscapedRE = regexp.MustCompile(`\\([{}|])`)

// uiDynamicPrompt mirrors the frontend's processDynamicPrompt: comments are removed,
// each {a|b|c} group (nestable, \-escapes kept literal) becomes one of its choices.
func uiDynamicPrompt(s string, r *rand.Rand) string {
	return uiEscapedRE.ReplaceAllString(uiDynamicExpand([]rune(uiCommentRE.ReplaceAllString(s, "")), r, 0), "$1")
}

func uiDynamicExpand(in []rune, r *rand.Rand, depth int) string {
	var out strings.Builder
	i := 0
	escape := func(b *strings.Builder) {
		b.WriteRune('\\')
		if i < len(in) {
			b.WriteRune(in[i])
			i++
		}
	}
	for i < len(in) {
		ch := in[i]
		i++
		switch ch {
		case '\\':
			escape(&out)
		case '{':
			var options []string
			var choice strings.Builder
			level := 0
		block:
			for i < len(in) {
				c := in[i]
				i++
				switch c {
				case '\\':
					escape(&choice)
					continue
				case '{':
					level++
				case '}':
					if level == 0 {
						break block
					}
					level--
				case '|':
					if level == 0 {
						options = append(options, choice.String())
						choice.Reset()
						continue
					}
				}
				choice.WriteRune(c)
			}
			options = append(options, choice.String())
			var pick int
			if r != nil {
				pick = r.IntN(len(options))
			} else {
				pick = rand.IntN(len(options))
			}
			if depth > 64 {
				out.WriteString(options[pick])
			} else {
				out.WriteString(uiDynamicExpand([]rune(options[pick]), r, depth+1))
			}
		default:
			out.WriteRune(ch)
		}
	}
	return out.String()
}
