//! Section 6: the jobs that did not finish.

use super::Ctx;
use crate::layout::Progress;
use crate::report::Report;

/// Section 6.
pub(super) fn section(ctx: &Ctx, r: &mut Report) {
    r.section("Jobs that did not finish");
    r.para(
        "Failed jobs exhausted their retries; unfinished jobs started but have no final \
         test epoch (still running, interrupted, or waiting for a retry). Their logs are in \
         logs/NNNNNN/stdout.log of the sweep folder; `regnet sweep launch` runs them again.",
    );
    let mut rows = Vec::new();
    for (sw, name) in ctx.sweeps.iter().zip(&ctx.names) {
        let stopped = (sw.models.iter())
            .filter(|m| matches!(m.status, Progress::Failed | Progress::Unfinished));
        for m in stopped {
            rows.push(vec![
                name.clone(),
                m.name.clone(),
                format!("{:?}", m.status).to_lowercase(),
                format!("{}/{}", m.epochs_done, m.max_epoch),
                m.attempts.to_string(),
                m.last_exit_code.map_or("-".into(), |c| c.to_string()),
                m.garbage_lines.to_string(),
            ]);
        }
    }
    if rows.is_empty() {
        r.note("None.");
    } else {
        let header = [
            "sweep",
            "model",
            "status",
            "epochs",
            "attempts",
            "last exit",
            "bad log lines",
        ];
        r.table(&header, &rows, &[0, 1, 2]);
    }
    let not_started: usize = ctx.sweeps.iter().map(|s| s.counts.not_started).sum();
    if not_started > 0 {
        r.note(&format!("{not_started} jobs have not started."));
    }
}
