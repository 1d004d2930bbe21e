// SPDX-License-Identifier: GPL-2.0

//! The view registry of one process: ids, states and the limit.
//!
//! Every process with views has one registry. It maps view ids to views and
//! enforces the rules of the contract that concern ids alone:
//!
//! - the base has id 0 when the process starts; later ids are allocated in
//!   increasing order and never reused for the lifetime of the process;
//! - a deleted view can no longer be looked up (`EINVAL`), but it stays in
//!   the registry, and counts against the limit, until its last thread has
//!   left it ([`Registry::remove`]);
//! - the base cannot be deleted (`EPERM`); switching the base changes no id;
//! - `MMVIEW_CREATE` fails with `ENOSPC` when the registry already holds
//!   `vm.mmview_max_views` views (the base and deleted views included).
//!
//! The registry is generic over the view handle `V`, so that its rules are
//! tested in isolation (KUnit suite `mmview_rs`). It does no locking of its
//! own: the family serialises all calls.

use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::code::{EINVAL, ENOSPC, EPERM};
use kernel::error::Result;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// A view id, as the system call takes and returns it.
pub(crate) type ViewId = u64;

/// The id of the base of a process that has never switched its base.
pub(crate) const BASE_ID: ViewId = kernel::uapi::MMVIEW_BASE_ID as ViewId;

/// Whether a view can still be migrated to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// The view can be migrated to.
    Live,
    /// `MMVIEW_DELETE` was called; threads still in the view keep it alive.
    Deleted,
}

/// One view in the registry.
struct Entry<V> {
    state: State,
    view: V,
}

/// Memory for one more registry entry, allocated before the caller takes
/// the locks under which it inserts the entry.
pub(crate) struct Slot<V>(RBTreeNodeReservation<ViewId, Entry<V>>);

impl<V> Slot<V> {
    /// Allocates a slot (may sleep).
    pub(crate) fn new() -> Result<Self> {
        Ok(Slot(RBTreeNodeReservation::new(GFP_KERNEL)?))
    }
}

/// The views of one process, by id.
///
/// # Invariants
///
/// - `views` holds an entry for `base`, in state [`State::Live`];
/// - every id in `views` is below `next_id`;
/// - `len` is the number of entries in `views`.
pub(crate) struct Registry<V> {
    views: RBTree<ViewId, Entry<V>>,
    len: usize,
    next_id: ViewId,
    base: ViewId,
}

impl<V> Registry<V> {
    /// A registry holding only the base, `base`, with id 0.
    pub(crate) fn new(base: V) -> Result<Self> {
        let mut views = RBTree::new();
        views.try_create_and_insert(
            BASE_ID,
            Entry {
                state: State::Live,
                view: base,
            },
            GFP_KERNEL,
        )?;
        // INVARIANT: the only entry is the base, live, with id 0 < 1.
        Ok(Registry {
            views,
            len: 1,
            next_id: BASE_ID + 1,
            base: BASE_ID,
        })
    }

    /// How many views the registry holds: the base, the live views and the
    /// deleted views that threads still use.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The id of the base.
    pub(crate) fn base_id(&self) -> ViewId {
        self.base
    }

    /// Checks that one more view fits under `limit` and returns the id it
    /// would get, without changing anything.
    pub(crate) fn next_id(&self, limit: usize) -> Result<ViewId> {
        if self.len() >= limit {
            return Err(ENOSPC);
        }
        Ok(self.next_id)
    }

    /// Adds `view` as a live view, in `slot`, and returns its id.
    ///
    /// Fails with `ENOSPC`, changing nothing, if the registry already holds
    /// `limit` views.
    pub(crate) fn insert(&mut self, slot: Slot<V>, view: V, limit: usize) -> Result<ViewId> {
        let id = self.next_id(limit)?;
        let next = id.checked_add(1).ok_or(ENOSPC)?;
        let old = self.views.insert(slot.0.into_node(
            id,
            Entry {
                state: State::Live,
                view,
            },
        ));
        // Ids only grow, so nothing can have been replaced.
        debug_assert!(old.is_none());
        // INVARIANT: the new id is below the new `next_id`; the base is
        // untouched; one more entry.
        self.next_id = next;
        self.len += 1;
        Ok(id)
    }

    /// The live view `id`; `EINVAL` if there is none (unknown or deleted).
    pub(crate) fn get_live(&self, id: ViewId) -> Result<&V> {
        match self.views.get(&id) {
            Some(Entry {
                state: State::Live,
                view,
            }) => Ok(view),
            _ => Err(EINVAL),
        }
    }

    /// The view `id`, live or deleted.
    pub(crate) fn get(&self, id: ViewId) -> Option<&V> {
        self.views.get(&id).map(|e| &e.view)
    }

    /// The state of view `id`, if it is in the registry.
    pub(crate) fn state(&self, id: ViewId) -> Option<State> {
        self.views.get(&id).map(|e| e.state)
    }

    /// Marks view `id` deleted: it can no longer be migrated to.
    ///
    /// `EPERM` for the base, `EINVAL` for an unknown or already deleted view.
    pub(crate) fn delete(&mut self, id: ViewId) -> Result<&V> {
        if id == self.base {
            return Err(EPERM);
        }
        match self.views.get_mut(&id) {
            Some(entry) if entry.state == State::Live => {
                entry.state = State::Deleted;
                Ok(&entry.view)
            }
            _ => Err(EINVAL),
        }
    }

    /// Takes the deleted view `id` out of the registry once its last thread
    /// has left it, and returns it. `None` if `id` is live or unknown.
    pub(crate) fn remove(&mut self, id: ViewId) -> Option<V> {
        if self.state(id) != Some(State::Deleted) {
            return None;
        }
        let entry = self.views.remove(&id)?;
        // INVARIANT: a deleted entry is never the base; one entry less.
        self.len -= 1;
        Some(entry.view)
    }

    /// Makes the live view `id` the base; `EINVAL` if there is none.
    #[cfg_attr(not(CONFIG_KUNIT), allow(dead_code))]
    pub(crate) fn set_base(&mut self, id: ViewId) -> Result {
        self.get_live(id)?;
        // INVARIANT: `id` is a live entry.
        self.base = id;
        Ok(())
    }

    /// The ids and views in the registry, in increasing id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ViewId, State, &V)> {
        self.views.iter().map(|(&id, e)| (id, e.state, &e.view))
    }
}
