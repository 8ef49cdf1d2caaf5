package workflow

import (
	"fmt"
	"slices"
	"time"
)

// Why an execution waits.
const (
	WaitHuman  = "human"  // a human node (or an ask_node to one) waits for a person's answer
	WaitBudget = "budget" // the execution is over its budget and on_budget is "pause"
)

// Inputs a human node asks for.
const (
	HumanText   = "text"   // free text
	HumanChoice = "choice" // one of config.choices
)

// On-budget policies (metadata.on_budget).
const (
	OnBudgetFail  = "fail"  // the execution ends with an error (the default)
	OnBudgetPause = "pause" // the execution waits for an approval (status waiting, reason budget)
)

// Wait is one thing a waiting execution waits for: a person's answer to a
// human node (Reason WaitHuman, with the node, its question and the form
// to answer it) or an approval of more budget (Reason WaitBudget).
type Wait struct {
	Reason   string   `json:"reason"`
	NodeID   string   `json:"node_id,omitempty"`
	Question string   `json:"question,omitempty"`
	Input    string   `json:"input,omitempty"` // HumanText or HumanChoice
	Choices  []string `json:"choices,omitempty"`
	// AskedBy is the node whose ask_node put the question; empty when it
	// is the human node's own run.
	AskedBy string    `json:"asked_by,omitempty"`
	Since   time.Time `json:"since"`
	// Deadline is when the default answer is taken (or the node fails);
	// nil: it waits until answered or stopped.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Default is the answer taken at the deadline, when there is one.
	Default *string `json:"default,omitempty"`
	// TokensUsed and TokenBudget say how far over its budget a budget wait
	// is, and SpentUSD and BudgetUSD the same in dollars when the workflow
	// sets budget_usd.
	TokensUsed  int     `json:"tokens_used,omitempty"`
	TokenBudget int     `json:"token_budget,omitempty"`
	SpentUSD    float64 `json:"spent_usd,omitempty"`
	BudgetUSD   float64 `json:"budget_usd,omitempty"`
}

// Key names the wait among an execution's: its node for a human node's,
// "budget" for the budget's.
func (w *Wait) Key() string {
	if w.Reason == WaitBudget {
		return WaitBudget
	}
	return w.NodeID
}

// HumanConfig is the typed configuration of a human node.
type HumanConfig struct {
	Question string        // a template, rendered when the node runs
	Input    string        // HumanText (the default) or HumanChoice
	Choices  []string      // the answers a choice allows
	Timeout  time.Duration // 0: no timeout
	Default  *string       // the answer taken at the timeout; nil: the node fails then
}

// Human reads the node's human settings. Values of the wrong type are
// ignored here; Validate reports them.
func (n *Node) Human() HumanConfig {
	c := HumanConfig{Input: HumanText}
	c.Question, _ = n.Config["question"].(string)
	if s, _ := n.Config["input"].(string); s == HumanChoice {
		c.Input = s
	}
	if list, ok := n.Config["choices"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				c.Choices = append(c.Choices, s)
			}
		}
	}
	if d, ok := seconds(n.Config["timeout_seconds"]); ok {
		c.Timeout = d
	}
	if s, ok := n.Config["default"].(string); ok {
		c.Default = &s
	}
	return c
}

// CheckAnswer reports why answer cannot answer a node with this config, or
// "" when it can: a choice must be one of the choices.
func (c HumanConfig) CheckAnswer(answer string) string {
	if c.Input == HumanChoice && !slices.Contains(c.Choices, answer) {
		return fmt.Sprintf("must be one of %q, not %q", c.Choices, answer)
	}
	return ""
}

func validateHumanConfig(path string, c map[string]any, add func(string, string, ...any)) {
	if q, ok := c["question"].(string); !ok || q == "" {
		add(path+".question", "a human node needs a question (a non-empty string), not %s", describe(c["question"]))
	}
	input := HumanText
	if v, ok := c["input"]; ok {
		s, _ := v.(string)
		if s != HumanText && s != HumanChoice {
			add(path+".input", "must be %q or %q, not %s", HumanText, HumanChoice, describe(v))
		}
		input = s
	}
	var choices []string
	if v, ok := c["choices"]; ok {
		list, isList := v.([]any)
		if !isList {
			add(path+".choices", "must be an array of strings, not %s", describe(v))
		}
		for i, e := range list {
			s, ok := e.(string)
			switch {
			case !ok || s == "":
				add(fmt.Sprintf("%s.choices[%d]", path, i), "must be a non-empty string, not %s", describe(e))
			case slices.Contains(choices, s):
				add(fmt.Sprintf("%s.choices[%d]", path, i), "duplicate choice %q", s)
			default:
				choices = append(choices, s)
			}
		}
	}
	if input == HumanChoice && len(choices) == 0 {
		add(path+".choices", "a choice needs at least one choice")
	}
	if input != HumanChoice && c["choices"] != nil {
		add(path+".choices", "is only for input %q", HumanChoice)
	}
	if v, ok := c["timeout_seconds"]; ok {
		checkSeconds(path+".timeout_seconds", v, add)
	}
	if v, ok := c["default"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			add(path+".default", "must be a string (the answer taken at the timeout), not %s", describe(v))
		case c["timeout_seconds"] == nil:
			add(path+".default", "is taken at the timeout: set timeout_seconds too")
		case input == HumanChoice && !slices.Contains(choices, s):
			add(path+".default", "must be one of the choices %q, not %q", choices, s)
		}
	}
}

// validateOnBudget checks metadata.on_budget.
func validateOnBudget(m map[string]any, add func(string, string, ...any)) {
	if v, ok := m["on_budget"]; ok {
		if s, _ := v.(string); s != OnBudgetFail && s != OnBudgetPause {
			add("metadata.on_budget", "must be %q or %q, not %s", OnBudgetFail, OnBudgetPause, describe(v))
		}
	}
}

// OnBudget returns the workflow's metadata.on_budget, OnBudgetFail when it
// is unset.
func (w *Workflow) OnBudget() string {
	if s, _ := w.Metadata["on_budget"].(string); s == OnBudgetPause {
		return s
	}
	return OnBudgetFail
}
