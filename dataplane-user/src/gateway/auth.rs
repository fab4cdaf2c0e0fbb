//! Terminal authorization (`GW_AUTH`, `GW_AUTH6`, `GW_OPEN`): the
//! tries' keys and the handle's methods.

use super::*;

/// The `GW_AUTH6` key of `group` and `addr/len`.
pub(super) fn auth_key6(group: u32, addr: Ipv6Addr, len: u8) -> Key<AuthKey6> {
    Key::new(
        32 + u32::from(len),
        AuthKey6 {
            group_be: group.to_be(),
            addr: net6(addr),
        },
    )
}

/// The `GW_AUTH` key of `group` and `addr/len`.
pub(super) fn auth_key(group: u32, addr: Ipv4Addr, len: u8) -> Key<AuthKey> {
    // The group is the key's first 32 bits, compared byte by byte.
    Key::new(
        32 + u32::from(len),
        AuthKey {
            group_be: group.to_be(),
            addr: net(addr),
        },
    )
}

impl Dataplane {
    /// Allow `addr/len` into `group` (`GW_AUTH` or `GW_AUTH6` by family).
    /// A /0 also marks the group open (`GW_OPEN`, once the trie holds it):
    /// its new sessions skip the trie. A group is of one family, so its
    /// mark stands for that family's terminals.
    pub fn auth_allow(&mut self, group: u32, addr: IpAddr, len: u8) -> Result<()> {
        match addr {
            IpAddr::V4(a) => {
                let mut t: LpmTrie<&mut MapData, AuthKey, u32> = self.map_mut(&maps::GW_AUTH)?;
                t.insert(&auth_key(group, a, len), 1, 0)
                    .map_err(map_err(&maps::GW_AUTH))?;
            }
            IpAddr::V6(a) => {
                let mut t: LpmTrie<&mut MapData, AuthKey6, u32> = self.map_mut(&maps::GW_AUTH6)?;
                t.insert(&auth_key6(group, a, len), 1, 0)
                    .map_err(map_err(&maps::GW_AUTH6))?;
            }
        }
        if len == 0 {
            self.set_group_open(group, true)?;
        }
        Ok(())
    }

    /// Whether `group` is marked as admitting every terminal.
    pub fn group_open(&self, group: u32) -> Result<bool> {
        let a: Array<&MapData, u32> = self.map(&maps::GW_OPEN)?;
        Ok(a.get(&group, 0).map_err(map_err(&maps::GW_OPEN))? != 0)
    }

    fn set_group_open(&mut self, group: u32, open: bool) -> Result<()> {
        let mut a: Array<&mut MapData, u32> = self.map_mut(&maps::GW_OPEN)?;
        a.set(group, open as u32, 0)
            .map_err(map_err(&maps::GW_OPEN))
    }

    /// Every (group, prefix address, prefix length) allowed, both families.
    pub fn auth_entries(&self) -> Result<Vec<(u32, IpAddr, u8)>> {
        let t: LpmTrie<&MapData, AuthKey, u32> = self.map(&maps::GW_AUTH)?;
        let keys: Vec<Key<AuthKey>> = t
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(map_err(&maps::GW_AUTH))?;
        let mut out: Vec<(u32, IpAddr, u8)> = keys
            .iter()
            .map(|k| {
                (
                    u32::from_be(k.data().group_be),
                    addr(k.data().addr).into(),
                    (k.prefix_len() - 32) as u8,
                )
            })
            .collect();
        let t6: LpmTrie<&MapData, AuthKey6, u32> = self.map(&maps::GW_AUTH6)?;
        for k in t6.keys() {
            let k = k.map_err(map_err(&maps::GW_AUTH6))?;
            out.push((
                u32::from_be(k.data().group_be),
                addr6(k.data().addr).into(),
                (k.prefix_len() - 32) as u8,
            ));
        }
        Ok(out)
    }

    /// The opposite of [`Self::auth_allow`]; 0.0.0.0/0 unmarks the group
    /// first, so the trie decides before the entry goes.
    pub fn auth_remove(&mut self, group: u32, addr: IpAddr, len: u8) -> Result<()> {
        if len == 0 {
            self.set_group_open(group, false)?;
        }
        match addr {
            IpAddr::V4(a) => {
                let mut t: LpmTrie<&mut MapData, AuthKey, u32> = self.map_mut(&maps::GW_AUTH)?;
                t.remove(&auth_key(group, a, len))
                    .map_err(map_err(&maps::GW_AUTH))
            }
            IpAddr::V6(a) => {
                let mut t: LpmTrie<&mut MapData, AuthKey6, u32> = self.map_mut(&maps::GW_AUTH6)?;
                t.remove(&auth_key6(group, a, len))
                    .map_err(map_err(&maps::GW_AUTH6))
            }
        }
    }
}
