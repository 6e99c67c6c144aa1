//! Sorting in parts: a physical optimizer rule, registered when the session is built, that
//! turns a sort over one scan of users into a sort over a scan feeding one partition per
//! core. The scan hands its batches to the partitions in turn, so the parts fill evenly and
//! decoding and sorting run at once. The sort is a [`GatherSortExec`], which sorts each
//! part's batches on a task of its own and merges them all (and gives way to DataFusion's
//! sort, spilling, when its rows do not fit); under a limit, DataFusion's top-k sort per
//! part, merged in order. A sort left in one part becomes a `GatherSortExec` too.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;

use super::gather::GatherSortExec;
use super::scan::UsersExec;

/// The rule; see the module's documentation.
#[derive(Debug, Clone, Copy)]
pub struct SortInParts {
    cores: usize,
    memory_limit: Option<usize>,
}

impl SortInParts {
    /// Sorts split into `cores` parts (at most), under a memory pool of `memory_limit`
    /// bytes (`None`: unbounded).
    pub fn new(cores: usize, memory_limit: Option<usize>) -> SortInParts {
        SortInParts {
            cores,
            memory_limit,
        }
    }

    /// The parts for a sort of users read from `scan`: one per core when the memory limit
    /// is at least 128M (each part and their merge hold memory that does not spill) and the
    /// inputs are files of at most four times the limit (the rows a sort holds are mostly a
    /// fraction of the users' text: a few columns, the users a query kept; a sort that
    /// spills is bound by the disk and by merging its runs, and more parts make more runs);
    /// otherwise one.
    fn parts(&self, scan: &UsersExec) -> usize {
        let fits = match (self.memory_limit, scan.source().total_bytes()) {
            (Some(limit), Some(bytes)) => limit >= 128 << 20 && bytes <= 4 * limit as u64,
            (None, Some(_)) => true,
            _ => false,
        };
        if fits { self.cores } else { 1 }
    }
}

impl PhysicalOptimizerRule for SortInParts {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rewritten = plan.transform_down(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(scan) = sort.input().downcast_ref::<UsersExec>() else {
                return Ok(Transformed::no(node));
            };
            if sort.preserve_partitioning() || scan.partitions() != 1 || scan.fetch().is_some() {
                return Ok(Transformed::no(node));
            }
            let parts = self.parts(scan);
            // A sort with a limit keeps DataFusion's top-k sort (it holds only the first
            // rows): left as it is in one part.
            if parts < 2 && sort.fetch().is_some() {
                return Ok(Transformed::no(node));
            }
            let input: Arc<dyn ExecutionPlan> = if parts < 2 {
                Arc::clone(sort.input())
            } else {
                Arc::new(scan.with_partitions(parts)?)
            };
            let sorted: Arc<dyn ExecutionPlan> = match sort.fetch() {
                // One sort over every part: the parts' batches sorted at once, gathered once.
                None => Arc::new(GatherSortExec::new(sort.expr().clone(), input)),
                Some(fetch) => {
                    let parts = SortExec::new(sort.expr().clone(), input)
                        .with_preserve_partitioning(true)
                        .with_fetch(Some(fetch));
                    Arc::new(
                        SortPreservingMergeExec::new(sort.expr().clone(), Arc::new(parts))
                            .with_fetch(Some(fetch)),
                    )
                }
            };
            Ok(Transformed::new(sorted, true, TreeNodeRecursion::Jump))
        })?;
        Ok(rewritten.data)
    }

    fn name(&self) -> &str {
        "sort_in_parts"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
