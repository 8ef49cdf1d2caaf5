package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The visual editor, driven in Chromium like a person would: the mouse on
// the SVG canvas, the keyboard, and the side panel's forms.

// editorReady is true once the editor has mounted and the server has
// checked the document it shows now.
const editorReady = `(() => { const r = document.getElementById('wf-editor'); const ed = r && r.editor;
	return !!ed && r.dataset.mounted === 'ready' && !ed.pending && ed.checked === JSON.stringify(ed.doc); })()`

// openEditor loads an editor page and waits until it has checked its
// document.
func (b *browser) openEditor(url string) {
	b.t.Helper()
	b.do("open the editor", 20*time.Second, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("ed-canvas")))
	b.waitJS("the editor is ready", editorReady, 20*time.Second)
}

// checked waits until the server has checked the editor's current
// document.
func (b *browser) checked(what string) {
	b.t.Helper()
	b.waitJS(what+" (checked)", editorReady, 20*time.Second)
}

// centerOf is the centre, in viewport pixels, of the element expr finds.
func (b *browser) centerOf(expr string) (float64, float64) {
	b.t.Helper()
	// The canvas, not the element, is scrolled into view: then no later
	// scroll moves what an earlier call measured.
	xy := evalJS[[]float64](b, `(() => { document.querySelector('.ed-canvas-box').scrollIntoView({block: 'nearest'}); const e = `+expr+`;
		const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`)
	return xy[0], xy[1]
}

// mouseDrag presses the left button at one point, moves to another in
// steps with the button held, and releases it there.
func mouseDrag(x1, y1, x2, y2 float64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		ev := func(typ input.DispatchMouseEventType, x, y float64, buttons int64) error {
			_, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{
				Type: typ, X: x, Y: y, Button: input.MouseButtonLeft, Buttons: buttons, ClickCount: 1,
			})
			return err
		}
		if err := ev(chromedp.MouseMoved, x1, y1, 0); err != nil {
			return err
		}
		if err := ev(chromedp.MousePressed, x1, y1, 1); err != nil {
			return err
		}
		const steps = 8
		for i := 1; i <= steps; i++ {
			f := float64(i) / steps
			if err := ev(chromedp.MouseMoved, x1+(x2-x1)*f, y1+(y2-y1)*f, 1); err != nil {
				return err
			}
		}
		return ev(chromedp.MouseReleased, x2, y2, 0)
	})
}

// fill replaces the text of a field as a person does: select it all, then
// type (one insertion, with its input event).
func (b *browser) fill(sel, text string) {
	b.t.Helper()
	b.do("fill "+sel, 10*time.Second,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.focus(); e.select(); return true; })()`, sel))(ctx, t)
			return err
		}),
		paste(text),
	)
}

// nodeEl is a JavaScript expression for the canvas box of node id.
func nodeEl(id string) string {
	return fmt.Sprintf(`document.querySelector('#ed-canvas .ed-node[data-id=%q]')`, id)
}

// editorDoc is the document the editor holds now.
func editorDoc(b *browser) map[string]any {
	b.t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(evalJS[string](b, `JSON.stringify(document.getElementById('wf-editor').editor.doc)`)), &doc); err != nil {
		b.t.Fatal(err)
	}
	return doc
}

// TestDashboardEditorBuildQA builds the Q&A workflow on an empty canvas
// with the mouse and the forms, saves it, runs it in pubsub mode and sees
// the conversation arrive; then deletes an arrow and sees the problem on
// the node that needs it, and undoes that.
func TestDashboardEditorBuildQA(t *testing.T) {
	t.Parallel()
	base := startServer(t, nil)
	b := newBrowser(t, 1440, 1000)
	b.do("the workflow list", 20*time.Second,
		chromedp.Navigate(base+"/ui/workflows"),
		chromedp.WaitVisible(chromedp.ID("wf-new")),
		chromedp.Click(chromedp.ID("wf-new")),
		chromedp.WaitVisible(chromedp.ID("ed-canvas")),
	)
	b.checked("the new, empty workflow")
	if !evalJS[bool](b, `document.getElementById('ed-save').disabled`) {
		t.Fatalf("save is enabled on an empty workflow")
	}
	if txt := evalJS[string](b, `document.getElementById('ed-problems').textContent`); !strings.Contains(txt, "at least one node") {
		t.Errorf("problems of an empty workflow: %q", txt)
	}

	// Add: start and end by a click on the palette, the two agents by
	// dragging them from the palette onto the canvas.
	b.do("add a start node", 10*time.Second, chromedp.Click(chromedp.ID("ed-add-start")))
	b.waitJS("the start node is drawn", nodeEl("start")+` !== null`, 10*time.Second)
	cx, cy := b.centerOf(`document.getElementById('ed-canvas')`)
	for i, id := range []string{"agent", "agent-2"} {
		px, py := b.centerOf(`document.getElementById('ed-add-ai-processor')`)
		b.do("drag an agent onto the canvas", 10*time.Second, mouseDrag(px, py, cx-100+float64(i)*280, cy+150))
		b.waitJS("agent "+id+" is drawn", nodeEl(id)+` !== null`, 10*time.Second)
	}
	b.do("add an end node", 10*time.Second, chromedp.Click(chromedp.ID("ed-add-end")))
	b.waitJS("four nodes", `document.querySelectorAll('#ed-canvas .ed-node').length === 4`, 10*time.Second)

	// Move: drag the end node by its box; its position changes by the drag.
	before := evalJS[[]float64](b, `(() => { const n = document.getElementById('wf-editor').editor.doc.nodes[3]; return [n.position.x, n.position.y]; })()`)
	ex, ey := b.centerOf(nodeEl("end"))
	b.do("drag the end node", 10*time.Second, mouseDrag(ex, ey, ex+60, ey+200))
	after := evalJS[[]float64](b, `(() => { const n = document.getElementById('wf-editor').editor.doc.nodes[3]; return [n.position.x, n.position.y]; })()`)
	k := evalJS[float64](b, `document.getElementById('wf-editor').editor.view.k`)
	if dx, dy := (after[0]-before[0])*k, (after[1]-before[1])*k; dx < 57 || dx > 63 || dy < 197 || dy > 203 {
		t.Errorf("the end node moved by %v,%v on the screen; want 60,200", dx, dy)
	}

	// The forms: name the agents, write their prompts.
	b.do("select the first agent", 10*time.Second, chromedp.Click(chromedp.CSS(`#ed-canvas .ed-node[data-id="agent"] .box`)))
	b.waitJS("its form is shown", `document.getElementById('ed-n-id')?.value === 'agent'`, 10*time.Second)
	b.fill("#ed-n-id", "asker")
	b.fill("#ed-f-name", "Asker")
	b.fill("#ed-f-system_prompt", "You are a curious student. Keep your answers short.")
	b.do("it can talk", 10*time.Second, chromedp.Click(chromedp.ID("ed-f-can_communicate")))
	b.do("select the second agent", 10*time.Second, chromedp.Click(chromedp.CSS(`#ed-canvas .ed-node[data-id="agent-2"] .box`)))
	b.waitJS("its form is shown", `document.getElementById('ed-n-id')?.value === 'agent-2'`, 10*time.Second)
	b.fill("#ed-n-id", "answerer")
	b.fill("#ed-f-name", "Answerer")
	b.fill("#ed-f-system_prompt", "You are a patient teacher who explains ideas simply.")
	b.do("it can talk too", 10*time.Second, chromedp.Click(chromedp.ID("ed-f-can_communicate")))

	// Connect by dragging from each node's handle onto the next node.
	for _, e := range [][2]string{{"start", "asker"}, {"asker", "answerer"}, {"answerer", "end"}} {
		fx, fy := b.centerOf(nodeEl(e[0]) + `.querySelector('.ed-port-out')`)
		tx, ty := b.centerOf(nodeEl(e[1]) + `.querySelector('.box')`)
		b.do("connect "+e[0]+" to "+e[1], 10*time.Second, mouseDrag(fx, fy, tx, ty))
		b.waitJS("the arrow "+e[0]+" → "+e[1], fmt.Sprintf(`document.getElementById('wf-editor').editor.doc.edges.some(e => e.from === %q && e.to === %q)`, e[0], e[1]), 10*time.Second)
	}
	if n := evalJS[int](b, `document.querySelectorAll('#ed-canvas .ed-edge').length`); n != 3 {
		t.Fatalf("%d arrows drawn, want 3", n)
	}

	// The prompts, with what the hints offer: the answerer's hints list
	// the asker's output once the arrow makes it run first.
	b.do("select the asker", 10*time.Second, chromedp.Click(chromedp.CSS(`#ed-canvas .ed-node[data-id="asker"] .box`)))
	b.waitJS("the asker's form, with the ask hint", `[...document.querySelectorAll('#ed-panel .ed-hint')].some(h => h.textContent.startsWith("CALL: ask_node('answerer'"))`, 10*time.Second)
	b.fill("#ed-f-prompt", "You want to understand {{question_topic}}. Ask with CALL: ask_node('answerer', 'Can you explain {{question_topic}} in two sentences?') and then write down what you learned.")
	b.do("select the answerer", 10*time.Second, chromedp.Click(chromedp.CSS(`#ed-canvas .ed-node[data-id="answerer"] .box`)))
	b.waitJS("the answerer's hints offer the asker's output", `[...document.querySelectorAll('#ed-panel .ed-hint')].some(h => h.textContent === '{{outputs.asker}}')`, 10*time.Second)
	b.fill("#ed-f-prompt", "The asker wrote: ")
	b.do("insert the asker's output from the hints", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#ed-panel .ed-hint[title^="the output of asker"]`)))
	if v := evalJS[string](b, `document.getElementById('ed-f-prompt').value`); v != "The asker wrote: {{outputs.asker}}" {
		t.Errorf("the prompt after the hint: %q", v)
	}

	// The workflow's own form: name, mode and the variable.
	b.do("the workflow's settings", 10*time.Second, chromedp.Click(chromedp.ID("ed-panel-workflow")))
	b.waitJS("the workflow form", `!!document.getElementById('ed-w-name')`, 10*time.Second)
	b.fill("#ed-w-name", "Q&A built on the canvas")
	b.do("pubsub mode", 10*time.Second, chromedp.Focus(chromedp.ID("ed-m-communication_mode")), chromedp.SendKeys(chromedp.ID("ed-m-communication_mode"), "pubsub"))
	b.do("add a variable", 10*time.Second, chromedp.Click(chromedp.ID("ed-add-var")))
	b.fill("#ed-v-0-name", "question_topic")
	b.fill("#ed-v-0-value", "photosynthesis")
	b.checked("the whole workflow")
	if p := evalJS[string](b, `document.getElementById('ed-problems').textContent`); p != "" {
		t.Fatalf("problems left: %s", p)
	}
	b.shot("editor-qa")

	// A save that fails (here: the form token's cookie is gone) says why
	// and leaves the button on, to save again.
	var jar []*network.Cookie
	b.do("the cookies go", 10*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
		if err != nil {
			return err
		}
		jar = got.Cookies
		_, err = chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{})
		return err
	}))
	b.do("save without them", 20*time.Second, chromedp.Click(chromedp.ID("ed-save")))
	b.waitJS("the failure is told", `document.getElementById('ed-status').textContent.startsWith('Could not save: the server answered 403') && !document.getElementById('ed-save').disabled`, 20*time.Second)
	b.do("the cookies come back", 10*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var ps []*network.CookieParam
		for _, c := range jar {
			ps = append(ps, &network.CookieParam{Name: c.Name, Value: c.Value, URL: base + c.Path, Path: c.Path, HTTPOnly: c.HTTPOnly, SameSite: c.SameSite})
		}
		_, err := chromedp.Call(ctx, network.SetCookies, network.SetCookiesParams{Cookies: ps})
		return err
	}))
	b.do("save", 20*time.Second, chromedp.Click(chromedp.ID("ed-save")))
	b.waitJS("saved", `!!document.getElementById('wf-editor').dataset.saved && document.getElementById('ed-status').textContent.startsWith('Saved')`, 20*time.Second)
	id := evalJS[string](b, `document.getElementById('wf-editor').dataset.saved`)
	if p := evalJS[string](b, `location.pathname`); p != "/ui/workflows/"+id+"/edit" {
		t.Errorf("after the first save the address is %s", p)
	}
	var stored struct {
		Name     string
		Metadata map[string]any
		Nodes    []struct {
			ID       string
			Position map[string]float64
			Config   map[string]any
		}
		Edges []struct{ From, To string }
	}
	if code := getJSON(t, base+"/workflows/"+id, &stored); code != http.StatusOK {
		t.Fatalf("GET the saved workflow: %d", code)
	}
	if stored.Name != "Q&A built on the canvas" || len(stored.Nodes) != 4 || len(stored.Edges) != 3 || stored.Metadata["communication_mode"] != "pubsub" {
		t.Fatalf("stored: %+v", stored)
	}
	for _, n := range stored.Nodes {
		if _, ok := n.Position["x"]; !ok {
			t.Errorf("node %s was stored without a position", n.ID)
		}
	}

	// Run it from its page in pubsub mode (the demo model, no
	// configuration) and see the conversation arrive.
	b.do("the workflow's page", 20*time.Second,
		chromedp.Click(chromedp.ID("ed-open")),
		chromedp.WaitVisible(chromedp.ID("run-form")),
	)
	if !evalJS[bool](b, `document.querySelector('#run-form input[value=pubsub]').checked`) {
		t.Errorf("the run form does not preselect the workflow's pubsub mode")
	}
	b.do("run it", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#run-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("exec-status")),
	)
	b.waitJS("the conversation arrives", `document.querySelector('#exec-status').textContent === 'success' &&
		document.querySelectorAll('#messages li[data-kind=ask]').length >= 1 &&
		document.querySelectorAll('#messages li[data-kind=response]').length >= 1`, 30*time.Second)
	if h := evalJS[string](b, `document.querySelector('#exec-header').textContent`); !strings.Contains(h, "pubsub") {
		t.Errorf("the run did not use pubsub:\n%s", h)
	}

	// Delete the arrow asker → answerer: the answerer's prompt needs it,
	// and says so on its node; undo brings it back.
	b.do("back to the editor", 20*time.Second, chromedp.Navigate(base+"/ui/workflows/"+id+"/edit"), chromedp.WaitVisible(chromedp.ID("ed-canvas")))
	b.checked("the stored workflow")
	hit := `[...document.querySelectorAll('#ed-canvas .ed-edge')].find(g => g.querySelector('title').textContent.startsWith('asker → answerer')).querySelector('.edge')`
	mid := evalJS[[]float64](b, `(() => { const p = `+hit+`; const pt = p.getPointAtLength(p.getTotalLength() / 2); const m = p.getScreenCTM();
		return [pt.x * m.a + pt.y * m.c + m.e, pt.x * m.b + pt.y * m.d + m.f]; })()`)
	mx, my := mid[0], mid[1]
	b.do("select the arrow", 10*time.Second, chromedp.MouseClickXY(mx, my))
	b.waitJS("the arrow is selected", `!!document.querySelector('#ed-canvas .ed-edge.is-selected') && document.getElementById('ed-panel').textContent.includes('Arrow')`, 10*time.Second)
	b.do("delete it with the Delete key", 10*time.Second, chromedp.KeyEvent(kb.Delete))
	b.waitJS("the problem shows on the answerer", nodeEl("answerer")+`.classList.contains('has-problem') && `+nodeEl("answerer")+`.querySelector('.ed-badge') !== null`, 20*time.Second)
	b.checked("the workflow without the arrow")
	if why := evalJS[string](b, `document.getElementById('ed-save').disabled ? document.getElementById('ed-status').textContent : ''`); !strings.Contains(why, "Fix 1 problem") {
		t.Errorf("save is not disabled with the reason: %q", why)
	}
	if p := evalJS[string](b, `document.getElementById('ed-problems').textContent`); !strings.Contains(p, "nodes[2].config.prompt") || !strings.Contains(p, `needs node "asker" to run before "answerer"`) {
		t.Errorf("problems: %s", p)
	}
	// The panel shows the problem at the field its path names.
	b.do("select the answerer", 10*time.Second, chromedp.Click(chromedp.CSS(`#ed-canvas .ed-node[data-id="answerer"] .box`)))
	b.waitJS("the prompt field carries the problem", `document.getElementById('ed-f-prompt-problem')?.textContent.includes('needs node "asker"')`, 10*time.Second)
	b.shot("editor-problem")
	b.do("undo with Ctrl+Z", 10*time.Second, chromedp.Click(chromedp.CSS(`#ed-canvas .ed-node[data-id="answerer"] .box`)), chromedp.KeyEvent("z", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	b.waitJS("the arrow is back", `document.querySelectorAll('#ed-canvas .ed-edge').length === 3`, 10*time.Second)
	b.checked("the workflow with its arrow again")
	if evalJS[bool](b, nodeEl("answerer")+`.classList.contains('has-problem')`) {
		t.Errorf("the problem stayed after undo")
	}
	if !evalJS[bool](b, `document.getElementById('ed-save').disabled && document.getElementById('ed-status').textContent.startsWith('Saved')`) {
		t.Errorf("after undo the workflow is as saved, but the status says %q", evalJS[string](b, `document.getElementById('ed-status').textContent`))
	}
}

// TestDashboardEditorKeyboard adds, connects, moves and deletes nodes with
// the keyboard alone; keeps the JSON tab in step both ways; warns before
// leaving unsaved changes; and shows a read-only canvas with the forms at
// 375 px.
func TestDashboardEditorKeyboard(t *testing.T) {
	t.Parallel()
	base := startServer(t, nil)
	b := newBrowser(t, 1280, 900)
	b.openEditor(base + "/ui/workflows/new")
	key := func(what string, keys string, opts ...chromedp.KeyOption) {
		t.Helper()
		b.do(what, 10*time.Second, chromedp.KeyEvent(keys, opts...))
	}
	focused := func() string {
		return evalJS[string](b, `document.activeElement.dataset.id || document.activeElement.id || document.activeElement.tagName`)
	}
	// Add from the palette: a focusable button, Enter adds and focuses
	// the new node.
	b.do("focus the palette", 10*time.Second, chromedp.Focus(chromedp.ID("ed-add-start")))
	key("add start", kb.Enter)
	b.waitJS("start is added and focused", `document.activeElement?.dataset?.id === 'start'`, 10*time.Second)
	b.do("focus the palette again", 10*time.Second, chromedp.Focus(chromedp.ID("ed-add-end")))
	key("add end", kb.Enter)
	b.waitJS("end is added and focused", `document.activeElement?.dataset?.id === 'end'`, 10*time.Second)
	if !evalJS[bool](b, `document.getElementById('ed-json').value.includes('"id": "end"')`) {
		t.Errorf("the JSON tab does not show the node added on the canvas")
	}

	// Select with Alt+arrows, connect with C then Enter.
	key("select the node on the left", kb.ArrowLeft, chromedp.KeyModifiers(chromedp.ModifierAlt))
	if f := focused(); f != "start" {
		t.Fatalf("Alt+Left focused %q, want start", f)
	}
	key("start connecting", "c")
	b.waitJS("connect mode says how", `document.getElementById('ed-help').textContent.startsWith('Connecting from start')`, 10*time.Second)
	key("pick the node on the right", kb.ArrowRight, chromedp.KeyModifiers(chromedp.ModifierAlt))
	key("connect", kb.Enter)
	b.waitJS("start → end", `(() => { const d = document.getElementById('wf-editor').editor.doc; return d.edges.length === 1 && d.edges[0].from === 'start' && d.edges[0].to === 'end'; })()`, 10*time.Second)

	// Move with the arrows: 20 px a press.
	y0 := evalJS[float64](b, `document.getElementById('wf-editor').editor.doc.nodes[1].position.y`)
	key("move down", kb.ArrowDown)
	key("move down again", kb.ArrowDown)
	if y := evalJS[float64](b, `document.getElementById('wf-editor').editor.doc.nodes[1].position.y`); y != y0+40 {
		t.Errorf("after two presses of Down the node is at y %v, want %v", y, y0+40)
	}
	if f := focused(); f != "end" {
		t.Errorf("moving lost the focus to %q", f)
	}
	b.checked("start → end")
	if !evalJS[bool](b, `!document.getElementById('ed-save').disabled`) {
		t.Errorf("a valid new workflow cannot be saved: %s", evalJS[string](b, `document.getElementById('ed-status').textContent`))
	}

	// Delete with the key, undo and redo with theirs; moving was one step.
	key("delete end", kb.Delete)
	b.waitJS("end and its arrow are gone", `(() => { const d = document.getElementById('wf-editor').editor.doc; return d.nodes.length === 1 && d.edges.length === 0; })()`, 10*time.Second)
	key("undo", "z", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	b.waitJS("end is back with its arrow", `(() => { const d = document.getElementById('wf-editor').editor.doc; return d.nodes.length === 2 && d.edges.length === 1; })()`, 10*time.Second)
	key("undo the move", "z", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	if y := evalJS[float64](b, `document.getElementById('wf-editor').editor.doc.nodes[1].position.y`); y != y0 {
		t.Errorf("one undo of the two arrow presses leaves y %v, want %v", y, y0)
	}
	key("redo", "Z", chromedp.KeyModifiers(chromedp.ModifierCtrl, chromedp.ModifierShift))
	if y := evalJS[float64](b, `document.getElementById('wf-editor').editor.doc.nodes[1].position.y`); y != y0+40 {
		t.Errorf("redo leaves y %v, want %v", y, y0+40)
	}

	// The JSON tab: an edit there shows on the canvas.
	b.do("the JSON tab", 10*time.Second, chromedp.Click(chromedp.ID("ed-tab-json")), chromedp.WaitVisible(chromedp.ID("ed-json")))
	doc := evalJS[string](b, `(() => { const d = JSON.parse(document.getElementById('ed-json').value); d.nodes.push({id: 'typed', type: 'ai-processor', config: {name: 'Typed in JSON', prompt: 'hi', custom_key: {a: 1}}}); d.edges.push({from: 'start', to: 'typed'});
		d.nodes.push({id: 'hook', type: 'webhook', config: {url: 'https://example.org/hook', auth: {type: 'bearer', token: 'tok', region: 'eu'}}});
		d.nodes.push({id: 'mail', type: 'email', config: {to: 'a@example.org, b@example.org'}}); return JSON.stringify(d, null, 2); })()`)
	b.do("type a document", 10*time.Second, chromedp.Focus(chromedp.ID("ed-json")),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { document.getElementById('ed-json').select(); return true; })()`)(ctx, t)
			return err
		}), paste(doc))
	b.do("back to the canvas", 10*time.Second, chromedp.Click(chromedp.ID("ed-tab-canvas")), chromedp.WaitVisible(chromedp.ID("ed-canvas")))
	b.waitJS("the typed node is drawn", nodeEl("typed")+` !== null && `+nodeEl("typed")+`.textContent.includes('Typed in JSON')`, 10*time.Second)

	// A type's alias gets its form (webhook is http); the JSON field holds
	// what no field edits, nested keys too, and an edit there keeps the
	// fields' values.
	b.do("select the webhook", 10*time.Second, chromedp.Focus(chromedp.CSS(`#ed-canvas .ed-node[data-id="hook"]`)))
	b.waitJS("the HTTP form", `document.getElementById('ed-f-url')?.value === 'https://example.org/hook' && document.getElementById('ed-f-auth-type').value === 'bearer'`, 10*time.Second)
	if raw := evalJS[string](b, `document.getElementById('ed-f-other').value`); !strings.Contains(raw, `"region": "eu"`) || strings.Contains(raw, "tok") || strings.Contains(raw, "url") {
		t.Errorf("the webhook's other settings: %s", raw)
	}
	b.fill("#ed-f-other", `{"auth": {"region": "us"}, "note": "kept"}`)
	b.waitJS("the edit keeps the fields", `(() => { const c = document.getElementById('wf-editor').editor.doc.nodes.find(n => n.id === 'hook').config;
		return c.auth.region === 'us' && c.auth.type === 'bearer' && c.auth.token === 'tok' && c.url === 'https://example.org/hook' && c.note === 'kept'; })()`, 10*time.Second)
	// A list the document holds as one string stays one string.
	b.do("select the email", 10*time.Second, chromedp.Focus(chromedp.CSS(`#ed-canvas .ed-node[data-id="mail"]`)))
	b.waitJS("one address a line", `document.getElementById('ed-f-to')?.value === 'a@example.org\nb@example.org'`, 10*time.Second)
	b.fill("#ed-f-to", "a@example.org\nc@example.org")
	b.waitJS("still a string", `document.getElementById('wf-editor').editor.doc.nodes.find(n => n.id === 'mail').config.to === 'a@example.org, c@example.org'`, 10*time.Second)

	// A problem at an arrow's path marks that arrow: a second start → end,
	// typed in the JSON, is a duplicate. Undo takes back that edit only.
	dup := evalJS[string](b, `(() => { const d = JSON.parse(document.getElementById('ed-json').value); d.edges.push({from: 'start', to: 'end'}); return JSON.stringify(d, null, 2); })()`)
	b.do("type a duplicate arrow", 10*time.Second, chromedp.Click(chromedp.ID("ed-tab-json")), chromedp.WaitVisible(chromedp.ID("ed-json")), chromedp.Focus(chromedp.ID("ed-json")),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { document.getElementById('ed-json').select(); return true; })()`)(ctx, t)
			return err
		}), paste(dup), chromedp.Click(chromedp.ID("ed-tab-canvas")))
	b.waitJS("the duplicate arrow is marked", `document.querySelectorAll('#ed-canvas .ed-edge.has-problem').length === 1 &&
		document.querySelector('#ed-canvas .ed-edge.has-problem').dataset.edge === String(document.getElementById('wf-editor').editor.doc.edges.length - 1)`, 20*time.Second)
	b.do("undo the duplicate", 10*time.Second, chromedp.Click(chromedp.ID("ed-undo")))
	b.checked("without the duplicate")
	if n := evalJS[int](b, `document.querySelectorAll('#ed-canvas .ed-edge.has-problem').length`); n != 0 {
		t.Errorf("%d arrows marked after undo", n)
	}
	if !evalJS[bool](b, nodeEl("typed")+` !== null`) {
		t.Errorf("undo took back the earlier JSON edit too")
	}

	// A condition's arrow carries "when", edited in the arrow's form.
	b.do("add a condition", 10*time.Second, chromedp.Click(chromedp.ID("ed-add-condition")))
	b.waitJS("the condition is focused", `document.activeElement?.dataset?.id === 'condition'`, 10*time.Second)
	key("connect from the condition", "c")
	b.do("pick the typed node", 10*time.Second, chromedp.Focus(chromedp.CSS(`#ed-canvas .ed-node[data-id="typed"]`)))
	key("connect", kb.Enter)
	b.waitJS("the arrow's form", `!!document.getElementById('ed-e-when')`, 10*time.Second)
	b.fill("#ed-e-when", "true")
	b.waitJS("the arrow is labelled", `[...document.querySelectorAll('#ed-canvas .ed-when')].some(t => t.textContent === 'true') &&
		document.getElementById('wf-editor').editor.doc.edges.some(e => e.from === 'condition' && e.to === 'typed' && e.when === 'true')`, 10*time.Second)

	// Unsaved changes: leaving asks first.
	if !evalJS[bool](b, `(() => { const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e); return e.defaultPrevented; })()`) {
		t.Errorf("no warning before leaving unsaved changes")
	}
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	asked := make(chan string, 1)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			select {
			case asked <- ev.Message:
			default:
			}
			_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	b.do("follow a link away", 10*time.Second, chromedp.Click(chromedp.CSS(`nav a[href="/ui/executions"]`)))
	select {
	case msg := <-asked:
		if !strings.Contains(msg, "not saved") {
			t.Errorf("the dialog on leaving says %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no dialog on leaving with unsaved changes")
	}
	if p := evalJS[string](b, `location.pathname`); p != "/ui/workflows/new" {
		t.Errorf("a refused leave went to %s", p)
	}

	// 375 px: the canvas is read-only, the forms work.
	b.do("narrow viewport", 10*time.Second, chromedp.EmulateViewport(375, 800))
	b.waitJS("read-only canvas", `document.getElementById('wf-editor').classList.contains('ed-readonly')`, 10*time.Second)
	if !evalJS[bool](b, `document.documentElement.scrollWidth <= window.innerWidth`) {
		t.Errorf("the editor is wider than 375 px: %d", evalJS[int](b, `document.documentElement.scrollWidth`))
	}
	if evalJS[bool](b, `!!document.querySelector('.ed-palette').offsetParent`) {
		t.Errorf("the palette shows at 375 px")
	}
	b.do("select a node at 375 px", 10*time.Second, chromedp.Focus(chromedp.CSS(`#ed-canvas .ed-node[data-id="typed"]`)))
	b.waitJS("its form", `document.getElementById('ed-f-name')?.value === 'Typed in JSON'`, 10*time.Second)
	x0 := evalJS[float64](b, `document.getElementById('wf-editor').editor.doc.nodes[2].position?.x ?? -1`)
	key("arrows do not move at 375 px", kb.ArrowRight)
	if x := evalJS[float64](b, `document.getElementById('wf-editor').editor.doc.nodes[2].position?.x ?? -1`); x != x0 {
		t.Errorf("a node moved on the read-only canvas")
	}
	b.fill("#ed-f-name", "Renamed at 375")
	b.waitJS("the canvas shows the new name", nodeEl("typed")+`.textContent.includes('Renamed at 375')`, 10*time.Second)
	// Keys no field names are kept, and shown as JSON.
	if !evalJS[bool](b, `(() => { const n = document.getElementById('wf-editor').editor.doc.nodes.find(n => n.id === 'typed');
		return n.config.name === 'Renamed at 375' && n.config.custom_key.a === 1 && document.getElementById('ed-f-other').value.includes('"custom_key"'); })()`) {
		t.Errorf("an unknown config key was not kept: %s", evalJS[string](b, `JSON.stringify(document.getElementById('wf-editor').editor.doc.nodes)`))
	}
	labelled(t, b)
	b.shot("editor-375")

	// When the form token is gone (the cookie expired), the editor says
	// what to do instead of failing quietly; the edit stays.
	b.do("the cookies expire", 10*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{})
		return err
	}))
	b.fill("#ed-f-name", "Edited without a token")
	b.waitJS("the editor says what to do", `document.getElementById('ed-status').textContent.includes('the form expired') && document.getElementById('ed-save').disabled`, 20*time.Second)
	if !evalJS[bool](b, `document.getElementById('ed-json').value.includes('Edited without a token')`) {
		t.Errorf("the edit is not in the JSON tab")
	}
}

// TestDashboardEditorOpensAsDrawn opens the editor on stored workflows:
// one whose positions would make boxes overlap opens where the workflow's
// page draws its nodes; one with positions that can be drawn keeps them.
// Opening leaves nothing to save.
func TestDashboardEditorOpensAsDrawn(t *testing.T) {
	t.Parallel()
	base := startServer(t, nil)
	crowded := importAPI(t, base, exampleFile(t, "examples/01_qa.json")) // boxes 220 apart, 200 wide
	spaced := importAPI(t, base, exampleFile(t, "examples/03_parallel_diamond.json"))
	b := newBrowser(t, 1280, 900)
	positions := `document.getElementById('wf-editor').editor.doc.nodes.map(n => 'translate(' + n.position.x + ' ' + n.position.y + ')').sort()`

	b.do("the workflow's page", 20*time.Second, chromedp.Navigate(base+"/ui/workflows/"+crowded), chromedp.WaitVisible(chromedp.ID("wf-edit")))
	drawn := evalJS[[]string](b, `[...document.querySelectorAll('#wf-graph g.node')].map(g => g.getAttribute('transform')).sort()`)
	b.do("edit it", 20*time.Second, chromedp.Click(chromedp.ID("wf-edit")), chromedp.WaitVisible(chromedp.ID("ed-canvas")))
	b.checked("the Q&A example")
	if edited := evalJS[[]string](b, positions); len(drawn) != 4 || strings.Join(drawn, ",") != strings.Join(edited, ",") {
		t.Errorf("the editor places the nodes at\n%v\nthe workflow page at\n%v", edited, drawn)
	}
	if why := evalJS[string](b, `document.getElementById('ed-status').textContent`); why != "Saved; no changes" {
		t.Errorf("just opened, the status says %q", why)
	}

	b.do("the spaced workflow's page", 20*time.Second, chromedp.Navigate(base+"/ui/workflows/"+spaced), chromedp.WaitVisible(chromedp.ID("wf-edit")))
	drawn = evalJS[[]string](b, `[...document.querySelectorAll('#wf-graph g.node')].map(g => g.getAttribute('transform')).sort()`)
	b.openEditor(base + "/ui/workflows/" + spaced + "/edit")
	stored := []string{"translate(0 150)", "translate(240 260)", "translate(240 40)", "translate(480 150)", "translate(720 150)"}
	if got := evalJS[[]string](b, positions); strings.Join(got, ",") != strings.Join(stored, ",") {
		t.Errorf("the stored positions became %v, want %v", got, stored)
	}

	// Pan by dragging the background; zoom with the wheel about the
	// pointer; Fit shows it all again.
	view := func() []float64 {
		return evalJS[[]float64](b, `(() => { const v = document.getElementById('wf-editor').editor.view; return [v.x, v.y, v.k]; })()`)
	}
	v0 := view()
	corner := evalJS[[]float64](b, `(() => { document.querySelector('.ed-canvas-box').scrollIntoView({block: 'nearest'});
		const r = document.getElementById('ed-canvas').getBoundingClientRect(); return [Math.round(r.left) + 8, Math.round(r.top) + 8]; })()`)
	b.do("pan", 10*time.Second, mouseDrag(corner[0], corner[1], corner[0]+50, corner[1]-30))
	if v := view(); v[0] != v0[0]+50 || v[1] != v0[1]-30 || v[2] != v0[2] {
		t.Errorf("after a pan of 50,-30 the view is %v, was %v", v, v0)
	}
	if evalJS[bool](b, `document.getElementById('wf-editor').editor.dirty()`) {
		t.Errorf("panning changed the document")
	}
	cx, cy := b.centerOf(`document.getElementById('ed-canvas')`)
	b.do("zoom in with the wheel", 10*time.Second, chromedp.MouseEvent(chromedp.MouseWheel, cx, cy, func(p *input.DispatchMouseEventParams) {
		p.DeltaX, p.DeltaY = 1, -100 // the protocol wants both; a zero is left out of the message
	}))
	b.waitJS("zoomed in", fmt.Sprintf(`document.getElementById('wf-editor').editor.view.k > %v`, v0[2]), 10*time.Second)
	b.do("fit", 10*time.Second, chromedp.Click(chromedp.ID("ed-fit")))
	if v := view(); v[2] != v0[2] || v[0] != v0[0] || v[1] != v0[1] {
		t.Errorf("after Fit the view is %v, at opening it was %v", v, v0)
	}

	// Arrange lays it out as the page draws it; undo puts it back.
	b.do("arrange", 10*time.Second, chromedp.Click(chromedp.ID("ed-arrange")))
	if got := evalJS[[]string](b, positions); strings.Join(got, ",") != strings.Join(drawn, ",") {
		t.Errorf("arranged at %v, the page draws %v", got, drawn)
	}
	b.checked("arranged")
	if why := evalJS[string](b, `document.getElementById('ed-status').textContent`); why != "Valid, not saved yet" {
		t.Errorf("after arranging the status says %q", why)
	}
	b.do("undo", 10*time.Second, chromedp.Click(chromedp.ID("ed-undo")))
	if got := evalJS[[]string](b, positions); strings.Join(got, ",") != strings.Join(stored, ",") {
		t.Errorf("after undo the positions are %v, want %v", got, stored)
	}
}

// TestEditorScreenshots writes the README's pictures of the editor to
// docs/ when SWITCHBOARD_EDITOR_DOCS is set (go test -run
// TestEditorScreenshots with SWITCHBOARD_EDITOR_DOCS=1).
func TestEditorScreenshots(t *testing.T) {
	if os.Getenv("SWITCHBOARD_EDITOR_DOCS") == "" {
		t.Skip("set SWITCHBOARD_EDITOR_DOCS=1 to write docs/editor-*.png")
	}
	base := startServer(t, nil)
	id := importAPI(t, base, exampleFile(t, "examples/02_research_team.json"))
	b := newBrowser(t, 1280, 1700) // tall enough that the editor needs no scrolling
	b.openEditor(base + "/ui/workflows/" + id + "/edit")
	b.do("select an agent", 10*time.Second, chromedp.Click(chromedp.CSS(`#ed-canvas .ed-node.node-ai-processor .box`)))
	b.checked("the example")
	write := func(name string) {
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		defer cancel()
		shot, err := chromedp.Run(ctx, chromedp.ScreenshotScale(chromedp.ID("wf-editor"), 0.75))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("docs", name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("editor.png")
	// A problem where it is: a badge on the node, the message at the field.
	b.do("select the writer", 10*time.Second, chromedp.Click(chromedp.CSS(`#ed-canvas .ed-node[data-id="writer"] .box`)))
	b.fill("#ed-f-temperature", "3")
	b.waitJS("the problem shows", nodeEl("writer")+`.classList.contains('has-problem') && document.getElementById('ed-f-temperature-problem').textContent !== ''`, 20*time.Second)
	write("editor-problem.png")
}
