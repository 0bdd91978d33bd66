//! The account database: users and groups by name or number, the groups
//! a user belongs to, and the [`Credentials`] a process runs with; and
//! [`switch`], which applies them in a child between fork and exec and
//! says which [`IdentityStep`] the kernel refused.
//!
//! `rustix` has no passwd API, so these are libc's reentrant calls
//! (`getpwnam_r`, `getpwuid_r`, `getgrnam_r`, `getgrgid_r`,
//! `getgrouplist`), which go through NSS like every other program on the
//! host (files, LDAP, systemd-userdb, ...). They may load modules and take
//! locks: call them before a spawn, never between fork and exec.
//!
//! A name made of digits is a number (as systemd and `chown` read it). A
//! number with no entry in the database is refused like an unknown name:
//! a process needs its entry for its home, shell and groups, as it does
//! under systemd.

use std::ffi::{CStr, CString};
use std::io;
use std::path::PathBuf;

/// Above this a `get*_r` buffer stops growing: no sane entry is this big.
const MAX_BUFFER: usize = 1 << 20;

/// More groups than Linux's `NGROUPS_MAX` cannot be set anyway.
const MAX_GROUPS: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("user `{0}` does not exist")]
    NoSuchUser(String),
    #[error("group `{0}` does not exist")]
    NoSuchGroup(String),
    #[error("cannot look up {what} `{name}` in the account database: {source}")]
    Lookup {
        what: &'static str,
        name: String,
        source: io::Error,
    },
    #[error("user `{0}` belongs to more than {MAX_GROUPS} groups")]
    TooManyGroups(String),
}

/// One entry of the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    pub name: String,
    /// `/` when the entry has none.
    pub home: PathBuf,
    /// `/bin/sh` when the entry has none, as login(1) does.
    pub shell: PathBuf,
}

/// One entry of the group database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub gid: u32,
    pub name: String,
}

impl User {
    /// The user named `name`, or with uid `name` when it is a number.
    pub fn lookup(name: &str) -> Result<User, AccountError> {
        find(name, passwd)
            .map_err(|source| AccountError::Lookup {
                what: "user",
                name: name.to_string(),
                source,
            })?
            .ok_or_else(|| AccountError::NoSuchUser(name.to_string()))
    }

    /// The user with this uid, if the database has one.
    pub fn by_uid(uid: u32) -> Result<Option<User>, AccountError> {
        passwd(Query::Id(uid)).map_err(|source| AccountError::Lookup {
            what: "user",
            name: uid.to_string(),
            source,
        })
    }

    /// What `initgroups(name, primary)` would set: `primary` and every
    /// group that lists this user as a member, without repeats. The
    /// user's own primary group is not added when `primary` differs
    /// (systemd's `User=` with `Group=` does the same).
    pub fn groups(&self, primary: u32) -> Result<Vec<u32>, AccountError> {
        let name = CString::new(self.name.as_str())
            .map_err(|_| AccountError::NoSuchUser(self.name.clone()))?;
        let mut room: usize = 64;
        loop {
            let mut list: Vec<libc::gid_t> = vec![0; room];
            let mut count = libc::c_int::try_from(room).unwrap_or(libc::c_int::MAX);
            // SAFETY: `name` is NUL-terminated; `list` has room for `count`
            // gids, and getgrouplist writes at most that many.
            let rc = unsafe {
                libc::getgrouplist(name.as_ptr(), primary, list.as_mut_ptr(), &mut count)
            };
            let count = usize::try_from(count).unwrap_or(0);
            if rc >= 0 {
                list.truncate(count.min(room));
                let mut seen = Vec::with_capacity(list.len());
                for gid in list {
                    if !seen.contains(&gid) {
                        seen.push(gid);
                    }
                }
                return Ok(seen);
            }
            // glibc says how many it needs; other libcs only that it was
            // too few.
            room = if count > room { count } else { room * 2 };
            if room > MAX_GROUPS {
                return Err(AccountError::TooManyGroups(self.name.clone()));
            }
        }
    }
}

impl Group {
    /// The group named `name`, or with gid `name` when it is a number.
    pub fn lookup(name: &str) -> Result<Group, AccountError> {
        find(name, group)
            .map_err(|source| AccountError::Lookup {
                what: "group",
                name: name.to_string(),
                source,
            })?
            .ok_or_else(|| AccountError::NoSuchGroup(name.to_string()))
    }

    /// The group with this gid, if the database has one.
    pub fn by_gid(gid: u32) -> Result<Option<Group>, AccountError> {
        group(Query::Id(gid)).map_err(|source| AccountError::Lookup {
            what: "group",
            name: gid.to_string(),
            source,
        })
    }
}

/// Who a child becomes before it execs, resolved before the spawn.
/// `None` leaves that part as the manager's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The supplementary groups (`setgroups`).
    pub groups: Option<Vec<u32>>,
}

impl Credentials {
    /// What a process's `user` and `group` mean, as `su -` and systemd
    /// read them: the user's uid; `group`'s gid, else the user's primary
    /// group; and the supplementary groups `initgroups` would give (see
    /// [`User::groups`]), or only `group` when there is no `user`.
    ///
    /// Only root may set supplementary groups or switch to another
    /// primary group: for any other manager, `groups` stays `None` (the
    /// child keeps the manager's) and `gid` is set only when `group` is
    /// given, so that a user naming itself changes nothing. Naming anyone
    /// else then fails at spawn, loudly; validation reports it earlier.
    ///
    /// Also returns the user's entry, for the environment it implies.
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<(Credentials, Option<User>), AccountError> {
        let user = user.map(User::lookup).transpose()?;
        let group = group.map(Group::lookup).transpose()?;
        let root = rustix::process::geteuid().is_root();
        let gid = match (&group, &user) {
            (Some(g), _) => Some(g.gid),
            (None, Some(u)) if root => Some(u.gid),
            (None, _) => None,
        };
        let groups = match (&user, gid) {
            (Some(u), Some(gid)) if root => Some(u.groups(gid)?),
            (None, Some(gid)) if root => Some(vec![gid]),
            _ => None,
        };
        let credentials = Credentials {
            uid: user.as_ref().map(|u| u.uid),
            gid,
            groups,
        };
        Ok((credentials, user))
    }
}

/// The part of the switch to a process's user and groups that the kernel
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdentityStep {
    /// `setgroups`: the supplementary groups.
    Groups,
    /// `setresgid`: the primary group.
    Group,
    /// `setresuid`: the user.
    User,
}

/// Switches to the supplementary `groups`, then `gid`, then `uid` (last:
/// once it is not root, the others are refused), or returns the refused
/// step and its errno. Every refusal is an error: a
/// child left with the manager's groups would keep root's access.
///
/// Raw system calls, not glibc's setgroups/setgid/setuid: those broadcast
/// the change to every thread glibc knows of, and after a raw clone3 it
/// still lists the parent's threads, so it would wait for them forever.
///
/// # Safety
/// Only in a child between fork (or clone) and exec. Async-signal-safe:
/// no allocation, no locks.
pub(crate) unsafe fn switch(
    groups: Option<&[u32]>,
    gid: Option<u32>,
    uid: Option<u32>,
) -> Result<(), (IdentityStep, i32)> {
    // SAFETY: raw system calls on a valid slice and plain integers.
    unsafe {
        let refused = |step: IdentityStep| (step, *libc::__errno_location());
        if let Some(groups) = groups {
            if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) < 0 {
                return Err(refused(IdentityStep::Groups));
            }
        }
        if let Some(gid) = gid {
            if libc::syscall(libc::SYS_setresgid, gid, gid, gid) < 0 {
                return Err(refused(IdentityStep::Group));
            }
        }
        if let Some(uid) = uid {
            if libc::syscall(libc::SYS_setresuid, uid, uid, uid) < 0 {
                return Err(refused(IdentityStep::User));
            }
        }
    }
    Ok(())
}

enum Query<'a> {
    Name(&'a CStr),
    Id(u32),
}

/// Looks `text` up: a number is an id, anything else a name (one with a
/// NUL byte names nobody).
fn find<T>(text: &str, lookup: fn(Query<'_>) -> io::Result<Option<T>>) -> io::Result<Option<T>> {
    if let Ok(id) = text.parse::<u32>() {
        return lookup(Query::Id(id));
    }
    match CString::new(text) {
        Ok(name) => lookup(Query::Name(&name)),
        Err(_) => Ok(None),
    }
}

/// Calls a `get*_r` function with a buffer that grows while it says
/// `ERANGE`; `call` copies what it found out of the buffer.
fn with_buffer<T>(mut call: impl FnMut(&mut [u8]) -> (i32, Option<T>)) -> io::Result<Option<T>> {
    let mut size = 4096;
    loop {
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            (0, found) => return Ok(found),
            (libc::ERANGE, _) if size < MAX_BUFFER => size *= 4,
            // What some NSS modules say instead of "no such entry".
            (libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM, _) => return Ok(None),
            (rc, _) => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// A string the database returned; a null pointer is an empty field.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string.
unsafe fn text(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated, as the caller promises.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn passwd(query: Query<'_>) -> io::Result<Option<User>> {
    with_buffer(|buf| {
        // SAFETY: passwd is plain data; all-zero (null pointers) is a valid
        // value for getpw*_r to overwrite.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: every pointer is valid for the call, and `len` is the
        // size of the buffer behind `ptr`.
        let rc = unsafe {
            match query {
                Query::Name(name) => {
                    libc::getpwnam_r(name.as_ptr(), &mut pwd, ptr, len, &mut result)
                }
                Query::Id(uid) => libc::getpwuid_r(uid, &mut pwd, ptr, len, &mut result),
            }
        };
        if result.is_null() {
            return (rc, None);
        }
        // SAFETY: on success the strings point into `buf`, still alive.
        let (name, home, shell) =
            unsafe { (text(pwd.pw_name), text(pwd.pw_dir), text(pwd.pw_shell)) };
        let user = User {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            name,
            home: PathBuf::from(if home.is_empty() { "/".into() } else { home }),
            shell: PathBuf::from(if shell.is_empty() {
                "/bin/sh".into()
            } else {
                shell
            }),
        };
        (rc, Some(user))
    })
}

fn group(query: Query<'_>) -> io::Result<Option<Group>> {
    with_buffer(|buf| {
        // SAFETY: group is plain data; all-zero is a valid value for
        // getgr*_r to overwrite.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: every pointer is valid for the call, and `len` is the
        // size of the buffer behind `ptr`.
        let rc = unsafe {
            match query {
                Query::Name(name) => {
                    libc::getgrnam_r(name.as_ptr(), &mut grp, ptr, len, &mut result)
                }
                Query::Id(gid) => libc::getgrgid_r(gid, &mut grp, ptr, len, &mut result),
            }
        };
        if result.is_null() {
            return (rc, None);
        }
        // SAFETY: on success the name points into `buf`, still alive.
        let name = unsafe { text(grp.gr_name) };
        (
            rc,
            Some(Group {
                gid: grp.gr_gid,
                name,
            }),
        )
    })
}

#[cfg(test)]
#[path = "tests/account.rs"]
mod tests;
