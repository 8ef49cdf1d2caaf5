package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/switchboard-dev/switchboard/llm/llmtest"
	"github.com/switchboard-dev/switchboard/workflow"
)

// executeWaiting runs workflow id synchronously and returns the execution,
// which must be waiting for a person.
func executeWaiting(t *testing.T, base, id string) string {
	t.Helper()
	var x workflow.Execution
	if code := postJSON(t, base+"/workflows/"+id+"/execute", `{}`, &x); code != 200 || x.Status != workflow.ExecWaiting {
		t.Fatalf("execute: %d %s %s", code, x.Status, x.Error)
	}
	return x.ID
}

// openWaiting opens execution id's page from the "Waiting for you" page,
// ready for its forms.
func openWaiting(b *browser, base, id string) {
	b.t.Helper()
	b.do("open the waiting page", 20*time.Second,
		chromedp.Navigate(base+"/ui/waiting"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/executions/`+id+`"]`)),
	)
	if n := evalJS[string](b, `document.querySelector('#waiting-count').textContent`); n == "" || n == "0" {
		b.t.Fatalf("the nav counts %q waiting executions", n)
	}
	b.slowSettle()
	b.watchStreams()
	b.do("open the execution", 20*time.Second,
		chromedp.Click(chromedp.CSS(`a[href="/ui/executions/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.waiting-box .stop-form button`)),
	)
	b.waitJS("the live header is connected", `window.__headerSwaps >= 1 && document.querySelector('#exec-status').textContent === 'waiting'`, 20*time.Second)
	b.markPage()
}

// A person answers human nodes (a choice, free text), approves a paused
// budget (a too small amount is refused on the form) and stops another,
// all from the dashboard.
func TestDashboardWaiting(t *testing.T) {
	model := llmtest.NewServer(t, func(req openai.ChatCompletionRequest) llmtest.Reply {
		return llmtest.Reply{Content: "reply to " + req.Messages[len(req.Messages)-1].Content,
			Usage: &openai.Usage{PromptTokens: 15, CompletionTokens: 5, TotalTokens: 20}}
	})
	base := startServer(t, map[string]string{"OPENAI_BASE_URL": model.URL(), "OPENAI_API_KEY": "test"})
	choice := importAPI(t, base, `{"name":"Ship it","nodes":[
		{"id":"ok","type":"human","config":{"question":"Ship <b>now</b>?","input":"choice","choices":["yes","no"]}}]}`)
	text := importAPI(t, base, `{"name":"Name it","nodes":[
		{"id":"name","type":"human","config":{"question":"What is it called?"}},
		{"id":"a","type":"ai-processor","config":{"prompt":"Call it {{outputs.name}}"}}],
		"edges":[{"from":"name","to":"a"}]}`)
	budget := importAPI(t, base, `{"name":"Pricey","metadata":{"token_budget":10,"on_budget":"pause"},"nodes":[
		{"id":"a","type":"ai-processor","config":{"prompt":"one"}},
		{"id":"b","type":"ai-processor","config":{"prompt":"two"}}],
		"edges":[{"from":"a","to":"b"}]}`)
	b := newBrowser(t, 1280, 900)

	id := executeWaiting(t, base, choice)
	openWaiting(b, base, id)
	if q := evalJS[string](b, `document.querySelector('.waiting-box .question').textContent`); q != "Ship <b>now</b>?" {
		t.Fatalf("question shown as %q", q)
	}
	b.shot("waiting-human")
	b.do("choose yes", 10*time.Second, chromedp.Click(chromedp.CSS(`.answer-form button[value="yes"]`)))
	b.waitJS("the run succeeded", `document.querySelector('#exec-status').textContent === 'success' && !document.querySelector('.waiting-box')`, 20*time.Second)
	b.waitJS("the output is the choice", `document.querySelector('#node-0 pre.output').textContent === 'yes'`, 20*time.Second)
	b.assertNotReloaded("after answering")
	b.shot("waiting-answered")

	id = executeWaiting(t, base, text)
	openWaiting(b, base, id)
	b.do("type an answer", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS(`.answer-form textarea`), "Switchboard"),
		chromedp.Click(chromedp.CSS(`.answer-form button[type=submit]`)),
	)
	b.waitJS("the run succeeded", `document.querySelector('#exec-status').textContent === 'success'`, 20*time.Second)
	b.waitJS("the next node used the answer", `document.querySelector('#node-1 pre.output').textContent === 'reply to Call it Switchboard'`, 20*time.Second)
	b.assertNotReloaded("after answering")

	id = executeWaiting(t, base, budget)
	openWaiting(b, base, id)
	if txt := evalJS[string](b, `document.querySelector('.wait-budget').textContent`); !strings.Contains(txt, "used 20 tokens of its token budget of 10") {
		t.Fatalf("the budget wait says %q", txt)
	}
	b.do("approve too little", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS(`.approve-form input[name=extra_tokens]`), "5"),
		chromedp.Click(chromedp.CSS(`.approve-form button`)),
	)
	b.waitJS("the form says why", `document.querySelector('.approve-form [data-error-area]').textContent.includes('extra_tokens')`, 10*time.Second)
	b.do("approve enough", 10*time.Second,
		chromedp.SetValue(chromedp.CSS(`.approve-form input[name=extra_tokens]`), "1000"),
		chromedp.Click(chromedp.CSS(`.approve-form button`)),
	)
	b.waitJS("the run succeeded", `document.querySelector('#exec-status').textContent === 'success'`, 20*time.Second)
	b.assertNotReloaded("after approving")
	b.shot("waiting-approved")

	id = executeWaiting(t, base, budget)
	openWaiting(b, base, id)
	b.shot("waiting-budget")
	b.do("stop it", 10*time.Second, chromedp.Click(chromedp.CSS(`.waiting-box .stop-form button`)))
	b.waitJS("the run is cancelled", `document.querySelector('#exec-status').textContent === 'cancelled'`, 20*time.Second)
	if txt := evalJS[string](b, `document.querySelector('#exec-header').textContent`); !strings.Contains(txt, "stopped by request while it waited for a budget approval") {
		t.Errorf("the header does not say why:\n%s", txt)
	}
	b.assertNotReloaded("after stopping")

	b.do("nothing waits any more", 20*time.Second,
		chromedp.Navigate(base+"/ui/waiting"),
		chromedp.WaitVisible(chromedp.CSS(`main .empty`)),
	)
	if n := evalJS[bool](b, `!!document.querySelector('#waiting-count')`); n {
		t.Fatal("the nav still counts waiting executions")
	}
}
