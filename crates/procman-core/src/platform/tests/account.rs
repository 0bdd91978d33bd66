//! Lookups against this host's real account database, checked against
//! `/etc/passwd` and `/etc/group` read directly.

use super::*;

/// The `/etc/passwd` line of `name`, split into its seven fields.
fn passwd_line(name: &str) -> Vec<String> {
    std::fs::read_to_string("/etc/passwd")
        .expect("/etc/passwd")
        .lines()
        .map(|l| l.split(':').map(String::from).collect::<Vec<_>>())
        .find(|f| f.len() == 7 && f[0] == name)
        .unwrap_or_else(|| panic!("{name} is not in /etc/passwd"))
}

#[test]
fn a_user_is_found_by_name_or_uid_with_its_entry() {
    let f = passwd_line("root");
    let root = User::lookup("root").expect("root");
    assert_eq!(root.uid, 0);
    assert_eq!(root.gid, 0);
    assert_eq!(root.name, "root");
    assert_eq!(root.home, PathBuf::from(&f[5]));
    assert_eq!(root.shell, PathBuf::from(&f[6]));
    assert_eq!(User::lookup("0").expect("uid 0"), root, "a number is a uid");
    assert_eq!(User::by_uid(0).expect("by uid"), Some(root));
}

#[test]
fn unknown_users_and_groups_are_named_in_the_error() {
    let err = User::lookup("no-such-user-procman").unwrap_err();
    assert_eq!(
        err.to_string(),
        "user `no-such-user-procman` does not exist"
    );
    assert!(matches!(
        User::lookup("bad\0name"),
        Err(AccountError::NoSuchUser(_))
    ));
    // The highest uid, which no database uses (it means "no change").
    assert!(matches!(
        User::lookup("4294967295"),
        Err(AccountError::NoSuchUser(_))
    ));
    let err = Group::lookup("no-such-group-procman").unwrap_err();
    assert_eq!(
        err.to_string(),
        "group `no-such-group-procman` does not exist"
    );
}

#[test]
fn a_group_is_found_by_name_or_gid() {
    let root = Group::lookup("0").expect("gid 0");
    assert_eq!(root.gid, 0);
    assert_eq!(Group::lookup(&root.name).expect("by name"), root);
    assert_eq!(Group::by_gid(0).expect("by gid"), Some(root));
}

#[test]
fn groups_start_from_the_primary_and_add_every_membership_once() {
    let group_file = std::fs::read_to_string("/etc/group").expect("/etc/group");
    let root = User::lookup("root").expect("root");
    let got = root.groups(0).expect("groups");
    assert_eq!(got.first(), Some(&0), "{got:?}");
    // Every group that lists root as a member, as /etc/group says.
    for line in group_file.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() == 4 && f[3].split(',').any(|m| m == "root") {
            let gid: u32 = f[2].parse().expect("gid");
            assert!(got.contains(&gid), "{line}: {got:?}");
        }
    }
    let mut unique = got.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no repeats: {got:?}");
    // Another primary group replaces the user's own.
    let other = root.groups(4242).expect("groups");
    assert_eq!(other.first(), Some(&4242));
}

#[test]
fn a_buffer_too_small_grows_until_the_entry_fits() {
    let mut sizes = Vec::new();
    let found = with_buffer(|buf| {
        sizes.push(buf.len());
        if buf.len() < 100_000 {
            (libc::ERANGE, None)
        } else {
            (0, Some(buf.len()))
        }
    });
    assert_eq!(found.expect("found"), Some(262_144));
    assert_eq!(sizes, [4096, 16_384, 65_536, 262_144]);
    let never = with_buffer(|_| (libc::ERANGE, None::<()>));
    assert_eq!(
        never.unwrap_err().raw_os_error(),
        Some(libc::ERANGE),
        "growth stops at the cap"
    );
}

#[test]
fn credentials_follow_su_and_systemd() {
    let (none, user) = Credentials::resolve(None, None).expect("nothing");
    assert_eq!(none, Credentials::default());
    assert_eq!(user, None);
    if !rustix::process::geteuid().is_root() {
        // Without root, only an explicit group is switched to.
        let (c, _) = Credentials::resolve(Some("root"), Some("0")).expect("root");
        assert_eq!((c.uid, c.gid, c.groups), (Some(0), Some(0), None));
        return;
    }
    let root = User::lookup("root").expect("root");
    let (c, user) = Credentials::resolve(Some("root"), None).expect("root");
    assert_eq!(user.as_ref(), Some(&root));
    assert_eq!(c.uid, Some(0));
    assert_eq!(c.gid, Some(0), "the user's primary group");
    assert_eq!(c.groups, Some(root.groups(0).expect("groups")));
    // `group` replaces the primary group, and the list is built from it.
    let other = Group::by_gid(1)
        .expect("gid 1")
        .expect("a group with gid 1 (daemon or bin)");
    let (c, _) = Credentials::resolve(Some("root"), Some(&other.name)).expect("root");
    assert_eq!(c.gid, Some(1));
    assert_eq!(c.groups, Some(root.groups(1).expect("groups")));
    let (c, user) = Credentials::resolve(None, Some("0")).expect("group only");
    assert_eq!(user, None);
    assert_eq!((c.uid, c.gid), (None, Some(0)));
    assert_eq!(
        c.groups,
        Some(vec![0]),
        "none of the manager's groups is kept"
    );
}
