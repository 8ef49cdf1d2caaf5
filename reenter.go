package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/executor"
	"github.com/switchboard-dev/switchboard/store"
	"github.com/switchboard-dev/switchboard/workflow"
)

// reenterWaiting continues, under their own ids, the executions that were
// waiting for a person when the last process stopped (however it stopped:
// they are not marked interrupted). Their completed nodes keep their
// outputs; what they waited for is asked again. One whose workflow was
// deleted meanwhile, or that cannot start, is recorded as failed with why:
// left waiting, nobody could answer or stop it.
func reenterWaiting(ctx context.Context, db *store.DB, ex *executor.Executor, logger *slog.Logger) error {
	list, err := db.WaitingExecutions(ctx)
	if err != nil {
		return fmt.Errorf("find waiting executions: %w", err)
	}
	for _, w := range list {
		x := w.Execution
		wf, err := db.GetWorkflow(ctx, x.WorkflowID)
		if err != nil {
			logger.Error("a waiting execution cannot continue: its workflow cannot be read", "execution_id", x.ID, "workflow_id", x.WorkflowID, "err", err)
			if workflow.ErrorCode(err) == workflow.CodeNotFound {
				failWaiting(ctx, db, x, fmt.Sprintf("its workflow %s was deleted while it waited", x.WorkflowID), logger)
			}
			continue
		}
		if _, err := ex.Start(wf, executor.Options{Reenter: &executor.Reentry{Execution: x, Seq: w.Seq,
			ExtraTokens: w.ExtraTokens, ExtraUSD: w.ExtraUSD}}); err != nil {
			logger.Error("a waiting execution cannot continue", "execution_id", x.ID, "err", err)
			failWaiting(ctx, db, x, "it could not continue after a restart: "+workflow.ErrorMessage(err), logger)
			continue
		}
		logger.Info("continuing a waiting execution", "execution_id", x.ID, "workflow_id", x.WorkflowID, "waits", len(x.Waiting))
	}
	return nil
}

// failWaiting ends a waiting execution that cannot continue, with why.
func failWaiting(ctx context.Context, db *store.DB, x *workflow.Execution, why string, logger *slog.Logger) {
	h := x.Header()
	now := time.Now().UTC()
	h.Status, h.Error, h.Waiting, h.EndTime = workflow.ExecError, why, nil, &now
	if err := db.Record(ctx, workflow.Event{ExecutionID: x.ID, Kind: workflow.EventExecution, Execution: h}); err != nil {
		logger.Error("recording a waiting execution as failed", "execution_id", x.ID, "err", err)
	}
}
