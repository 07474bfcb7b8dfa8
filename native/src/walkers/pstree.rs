//! Processes as a tree by parent pid, the way pstree(1) draws /proc: each process under its real_parent.

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::walkers::tasks::{walk_tasks, TaskOptions};
use crate::walkers::Context;
use crate::Result;

/// Deepest nesting drawn; a deeper chain (or a parent cycle a damaged guest could hold) is cut there.
const MAX_DEPTH: usize = 256;

crate::walker! {
    /// Every process under its parent, from the task list (no cmdlines read).
    name: "pstree",
    options: PstreeOptions,
    record: ProcessTree,
    run: walk,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PstreeOptions {
    /// Include kernel threads (kthreadd's subtree); default true.
    pub kernel_threads: bool,
}

impl Default for PstreeOptions {
    fn default() -> Self {
        PstreeOptions { kernel_threads: true }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TreeNode {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub kernel_thread: bool,
    pub children: Vec<TreeNode>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ProcessTree {
    /// Processes whose parent is not listed (pid 0's children, or orphans of a damaged list).
    pub roots: Vec<TreeNode>,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, o: &PstreeOptions) -> Result<ProcessTree> {
    let list = walk_tasks(cx.kernel, &TaskOptions { threads: false, cmdline: false, ..Default::default() })?;
    let mut tree = ProcessTree { roots: Vec::new(), warnings: list.warnings };
    let tasks: BTreeMap<i32, _> = list.tasks.into_iter().filter(|t| o.kernel_threads || !t.kernel_thread).map(|t| (t.pid, t)).collect();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut roots = Vec::new();
    for t in tasks.values() {
        if t.ppid != t.pid && tasks.contains_key(&t.ppid) {
            children.entry(t.ppid).or_default().push(t.pid);
        } else {
            roots.push(t.pid);
        }
    }
    let mut placed = std::collections::HashSet::new();
    fn build(pid: i32, depth: usize, tasks: &BTreeMap<i32, crate::walkers::tasks::Task>, children: &HashMap<i32, Vec<i32>>, placed: &mut std::collections::HashSet<i32>, warnings: &mut Vec<String>) -> Option<TreeNode> {
        let t = tasks.get(&pid)?;
        if !placed.insert(pid) {
            return None;
        }
        let mut node = TreeNode { pid, comm: t.comm.clone(), state: t.state, kernel_thread: t.kernel_thread, children: Vec::new() };
        if depth >= MAX_DEPTH {
            warnings.push(format!("process tree deeper than {MAX_DEPTH} levels below pid {pid}: cut there"));
            return Some(node);
        }
        for &c in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            node.children.extend(build(c, depth + 1, tasks, children, placed, warnings));
        }
        Some(node)
    }
    for pid in roots {
        tree.roots.extend(build(pid, 0, &tasks, &children, &mut placed, &mut tree.warnings));
    }
    // Parent cycles leave processes no root reaches: list them at the top rather than lose them.
    let unplaced: Vec<i32> = tasks.keys().copied().filter(|p| !placed.contains(p)).collect();
    if !unplaced.is_empty() {
        tree.warnings.push(format!("{} process(es) in a parent cycle, shown at the top: {unplaced:?}", unplaced.len()));
        for pid in unplaced {
            if !placed.contains(&pid) {
                tree.roots.extend(build(pid, 0, &tasks, &children, &mut placed, &mut tree.warnings));
            }
        }
    }
    Ok(tree)
}
