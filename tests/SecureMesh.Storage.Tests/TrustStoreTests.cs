using System.Net;
using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage.Tests;

public sealed class TrustStoreTests
{
    [Fact]
    public void AddPeer_stores_peer_addresses_and_audits_in_one_go()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        var record = t.Trust.AddPeer(peer, " alice ", ["192.0.2.7:4001", "[2001:DB8::7]:4001", "Example.COM:9"], trusted: true);
        Assert.Equal(peer, record.PeerId);
        Assert.Equal("alice", record.Name);
        Assert.Equal(PeerState.Trusted, record.State);
        Assert.Equal(peer.Fingerprint, record.Fingerprint);
        Assert.Equal(t.Time.GetUtcNow(), record.Created);
        Assert.Equal(["192.0.2.7:4001", "[2001:db8::7]:4001", "example.com:9"], record.Addresses.Select(a => a.Address));
        Assert.All(record.Addresses, a => Assert.Equal(AddressSource.User, a.Source));
        var entry = Assert.Single(t.Db.Audit.List());
        Assert.Equal("peer.added", entry.Event);
        Assert.Equal(peer.Text, entry.PeerId);
        Assert.Contains("state=trusted", entry.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void ListPeerIds_gives_exactly_the_peers_in_a_state()
    {
        using var t = new TestDatabase();
        var trusted = Enumerable.Range(0, 3).Select(_ => TestDatabase.NewPeer()).ToList();
        foreach (var p in trusted)
        {
            t.Trust.AddPeer(p, trusted: true);
        }
        var pending = TestDatabase.NewPeer();
        t.Trust.AddPeer(pending);
        Assert.Equal(trusted.Select(p => p.Text).Order(StringComparer.Ordinal), t.Trust.ListPeerIds(PeerState.Trusted).Order(StringComparer.Ordinal));
        Assert.Equal([pending.Text], t.Trust.ListPeerIds(PeerState.Pending));
        Assert.Empty(t.Trust.ListPeerIds(PeerState.Blocked));
        Assert.Equal(t.Trust.ListPeers(PeerState.Trusted).Select(p => p.PeerId.Text).Order(StringComparer.Ordinal), t.Trust.ListPeerIds(PeerState.Trusted).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AddPeer_untrusted_is_pending()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        Assert.Equal(PeerState.Pending, t.Trust.AddPeer(peer).State);
        Assert.Equal(AuthorizationDecision.Pending, t.Trust.Authorize(peer, IPAddress.Loopback));
    }

    [Fact]
    public void AddPeer_duplicate_is_conflict_and_changes_nothing()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, "alice");
        var before = t.Snapshot();
        var e = Assert.Throws<SecureMeshException>(() => t.Trust.AddPeer(peer, "bob", ["192.0.2.1:1"], trusted: true));
        Assert.Equal(SecureMeshErrorKind.Conflict, e.Kind);
        Assert.Contains(peer.Text, e.Message, StringComparison.Ordinal);
        Assert.Equal(before, t.Snapshot());
    }

    [Theory]
    [InlineData("192.0.2.7")]
    [InlineData("192.0.2.7:0")]
    [InlineData("192.0.2.7:65536")]
    [InlineData("2001:db8::7:4001")]
    [InlineData("[nothost]:4001")]
    [InlineData("300.1.1.1:4001")]
    [InlineData("bad host:4001")]
    [InlineData(":4001")]
    public void AddPeer_with_a_bad_address_is_invalid_input_and_changes_nothing(string address)
    {
        using var t = new TestDatabase();
        var before = t.Snapshot();
        var e = Assert.Throws<SecureMeshException>(() => t.Trust.AddPeer(TestDatabase.NewPeer(), "x", ["192.0.2.1:1", address]));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.StartsWith("invalid peer address", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, t.Snapshot());
    }

    [Theory]
    [InlineData("")]
    [InlineData("12D3KooW")]
    [InlineData("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")]
    [InlineData("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA0")]
    public void Invalid_peer_ids_are_rejected_by_PeerId_Parse_before_reaching_the_store(string text)
    {
        using var t = new TestDatabase();
        var before = t.Snapshot();
        var e = Assert.Throws<SecureMeshException>(() => t.Trust.AddPeer(PeerId.Parse(text)));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Contains("Peer ID", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, t.Snapshot());
    }

    [Fact]
    public void Invalid_name_is_rejected_and_changes_nothing()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, "alice");
        var before = t.Snapshot();
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Trust.Rename(peer, new string('a', 65))).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Trust.Rename(peer, "a\nb")).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Trust.AddPeer(TestDatabase.NewPeer(), "\u0007")).Kind);
        Assert.Equal(before, t.Snapshot());
    }

    [Fact]
    public void Unknown_peer_is_not_found_for_every_mutation_and_changes_nothing()
    {
        using var t = new TestDatabase();
        t.Trust.AddPeer(TestDatabase.NewPeer(), "someone");
        var unknown = TestDatabase.NewPeer();
        var before = t.Snapshot();
        Action[] calls =
        [
            () => t.Trust.Trust(unknown),
            () => t.Trust.Unblock(unknown),
            () => t.Trust.Rename(unknown, "x"),
            () => t.Trust.Remove(unknown),
            () => t.Trust.AddAddress(unknown, "192.0.2.1:1"),
        ];
        foreach (var call in calls)
        {
            var e = Assert.Throws<SecureMeshException>(call);
            Assert.Equal(SecureMeshErrorKind.NotFound, e.Kind);
            Assert.Equal($"peer {unknown.Text} is not known", e.Message);
        }
        Assert.False(t.Trust.TouchSeen(unknown));
        Assert.Null(t.Trust.GetPeer(unknown));
        Assert.Equal(before, t.Snapshot());
    }

    [Fact]
    public void Trust_block_unblock_rename_remove_lifecycle_with_audit()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, "alice", ["192.0.2.7:4001"]);
        Assert.True(t.Trust.Trust(peer));
        Assert.False(t.Trust.Trust(peer));
        Assert.Equal(AuthorizationDecision.Trusted, t.Trust.Authorize(peer, IPAddress.Parse("192.0.2.7")));

        t.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(t.Trust.Block(peer, "spam"));
        Assert.False(t.Trust.Block(peer, "again"));
        var blocked = t.Trust.GetPeer(peer)!;
        Assert.Equal(PeerState.Blocked, blocked.State);
        Assert.Equal("spam", blocked.BlockReason);
        Assert.Equal(t.Time.GetUtcNow(), blocked.Updated);
        Assert.Equal(AuthorizationDecision.BlockedPeer, t.Trust.Authorize(peer, IPAddress.Parse("192.0.2.7")));

        Assert.True(t.Trust.Unblock(peer));
        Assert.False(t.Trust.Unblock(peer));
        Assert.Equal(PeerState.Pending, t.Trust.GetPeer(peer)!.State);
        Assert.Null(t.Trust.GetPeer(peer)!.BlockReason);

        t.Trust.Rename(peer, "alice2");
        Assert.Equal("alice2", t.Trust.GetPeer(peer)!.Name);
        t.Trust.Rename(peer, null);
        Assert.Null(t.Trust.GetPeer(peer)!.Name);

        t.Trust.Remove(peer);
        Assert.Null(t.Trust.GetPeer(peer));
        Assert.Equal(0, t.Count("peer_addresses"));
        Assert.Equal(AuthorizationDecision.Unknown, t.Trust.Authorize(peer, IPAddress.Loopback));

        Assert.Equal(["peer.added", "peer.trusted", "peer.blocked", "peer.unblocked", "peer.renamed", "peer.renamed", "peer.removed"],
            t.Db.Audit.List().Select(e => e.Event));
        Assert.All(t.Db.Audit.List(), e => Assert.Equal(peer.Text, e.PeerId));
        Assert.True(t.Db.Audit.Verify().Ok);
    }

    [Fact]
    public void Block_of_a_never_seen_peer_records_it_blocked()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        Assert.True(t.Trust.Block(peer, "known bad"));
        Assert.Equal(PeerState.Blocked, t.Trust.GetPeer(peer)!.State);
        Assert.Equal(AuthorizationDecision.BlockedPeer, t.Trust.Authorize(peer, IPAddress.Loopback));
        Assert.Equal(PeerState.Blocked, t.Trust.RecordPending(peer, new IPEndPoint(IPAddress.Loopback, 5000)));
        Assert.Equal(PeerState.Blocked, t.Trust.GetPeer(peer)!.State);
    }

    [Fact]
    public void RecordPending_inserts_once_then_only_touches_and_never_downgrades()
    {
        using var t = new TestDatabase();
        var stranger = TestDatabase.NewPeer();
        Assert.Equal(PeerState.Pending, t.Trust.RecordPending(stranger, new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.9"), 5000)));
        var first = t.Trust.GetPeer(stranger)!;
        Assert.Equal(t.Time.GetUtcNow(), first.FirstSeen);
        // The IP only: an inbound connection's source port is ephemeral (issue 14).
        Assert.Equal("192.0.2.9", Assert.Single(first.Addresses).Address);
        Assert.Equal(AddressSource.Seen, first.Addresses[0].Source);

        t.Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(PeerState.Pending, t.Trust.RecordPending(stranger, "[2001:db8::1]:6000"));
        var second = t.Trust.GetPeer(stranger)!;
        Assert.Equal(first.FirstSeen, second.FirstSeen);
        Assert.Equal(t.Time.GetUtcNow(), second.LastSeen);
        Assert.Equal(2, second.Addresses.Count);
        Assert.Single(t.Db.Audit.List(), e => e.Event == "peer.pending");

        var friend = TestDatabase.NewPeer();
        t.Trust.AddPeer(friend, "friend", ["192.0.2.1:4001"], trusted: true);
        Assert.Equal(PeerState.Trusted, t.Trust.RecordPending(friend, "192.0.2.1:4001"));
        var f = t.Trust.GetPeer(friend)!;
        Assert.Equal(PeerState.Trusted, f.State);
        Assert.Equal(AddressSource.User, Assert.Single(f.Addresses).Source);
        Assert.Equal(t.Time.GetUtcNow(), f.Addresses[0].LastSeen);
        Assert.Equal(2, t.Trust.ListPeers().Count);
        Assert.Equal([stranger], t.Trust.ListPeers(PeerState.Pending).Select(p => p.PeerId));
        Assert.Equal([friend], t.Trust.ListPeers(PeerState.Trusted).Select(p => p.PeerId));
        Assert.Empty(t.Trust.ListPeers(PeerState.Blocked));
    }

    [Fact]
    public void RecordPending_past_the_cap_forgets_the_stalest_stranger_but_not_user_added_peers()
    {
        using var t = new TestDatabase();
        t.Trust.MaxPendingPeers = 3;
        var userAdded = TestDatabase.NewPeer();
        t.Trust.AddPeer(userAdded, "from a friend");
        var first = TestDatabase.NewPeer();
        var second = TestDatabase.NewPeer();
        t.Trust.RecordPending(first, "192.0.2.1:1");
        t.Time.Advance(TimeSpan.FromSeconds(1));
        t.Trust.RecordPending(second, "192.0.2.2:1");
        t.Time.Advance(TimeSpan.FromSeconds(1));
        t.Trust.RecordPending(first, "192.0.2.1:1");
        var third = TestDatabase.NewPeer();
        t.Trust.RecordPending(third, "192.0.2.3:1");
        Assert.Null(t.Trust.GetPeer(second));
        Assert.NotNull(t.Trust.GetPeer(first));
        Assert.NotNull(t.Trust.GetPeer(userAdded));
        Assert.Equal(3, t.Trust.ListPeers(PeerState.Pending).Count);
        Assert.EndsWith($"evicted={second.Text}", t.Db.Audit.List().Last().Detail, StringComparison.Ordinal);
        Assert.True(t.Db.Audit.Verify().Ok);
    }

    [Fact]
    public void TouchSeen_and_AddAddress()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer);
        t.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(t.Trust.TouchSeen(peer, "192.0.2.3:7"));
        Assert.Equal(t.Time.GetUtcNow(), t.Trust.GetPeer(peer)!.LastSeen);
        Assert.True(t.Trust.AddAddress(peer, "host.example:4001", AddressSource.Discovered));
        Assert.False(t.Trust.AddAddress(peer, "HOST.example:4001"));
        Assert.Equal(2, t.Trust.GetPeer(peer)!.Addresses.Count);
        Assert.Equal(["peer.added", "peer.address_added"], t.Db.Audit.List().Select(e => e.Event));
    }

    [Fact]
    public void Authorize_blocked_address_beats_trust_and_matches_mapped_ipv4()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, trusted: true);
        t.Trust.BlockAddress("10.0.0.0/8", "lan abuse");
        t.Trust.BlockAddress("2001:db8::/32");
        Assert.Equal(AuthorizationDecision.BlockedAddress, t.Trust.Authorize(peer, IPAddress.Parse("10.200.1.1")));
        Assert.Equal(AuthorizationDecision.BlockedAddress, t.Trust.Authorize(peer, IPAddress.Parse("::ffff:10.1.1.1")));
        Assert.Equal(AuthorizationDecision.BlockedAddress, t.Trust.Authorize(peer, IPAddress.Parse("2001:db8:ffff::1")));
        Assert.Equal(AuthorizationDecision.Trusted, t.Trust.Authorize(peer, IPAddress.Parse("11.0.0.1")));
        Assert.Equal(AuthorizationDecision.Trusted, t.Trust.Authorize(peer, IPAddress.Parse("2001:db9::1")));
        Assert.Equal(AuthorizationDecision.BlockedAddress, t.Trust.Authorize(TestDatabase.NewPeer(), IPAddress.Parse("10.0.0.1")));
        Assert.Equal(AuthorizationDecision.Unknown, t.Trust.Authorize(TestDatabase.NewPeer(), IPAddress.Parse("192.0.2.1")));
        t.Trust.UnblockAddress("10.1.2.3/8");
        Assert.Equal(AuthorizationDecision.Trusted, t.Trust.Authorize(peer, IPAddress.Parse("10.200.1.1")));
    }

    [Fact]
    public void Address_blocklist_add_duplicate_unknown_and_list()
    {
        using var t = new TestDatabase();
        var added = t.Trust.BlockAddress("192.0.2.77", "scanner");
        Assert.Equal("192.0.2.77/32", added.Cidr);
        t.Trust.BlockAddress("2001:DB8::/32");
        var before = t.Snapshot();
        var dup = Assert.Throws<SecureMeshException>(() => t.Trust.BlockAddress("192.0.2.77/32"));
        Assert.Equal(SecureMeshErrorKind.Conflict, dup.Kind);
        Assert.Equal("address range 192.0.2.77/32 is already blocked", dup.Message);
        Assert.Equal(SecureMeshErrorKind.Conflict, Assert.Throws<SecureMeshException>(() => t.Trust.BlockAddress("2001:db8:1::/32")).Kind);
        var missing = Assert.Throws<SecureMeshException>(() => t.Trust.UnblockAddress("192.0.2.0/24"));
        Assert.Equal(SecureMeshErrorKind.NotFound, missing.Kind);
        Assert.Equal(before, t.Snapshot());
        var list = t.Trust.ListBlocklist();
        Assert.Equal(["192.0.2.77/32", "2001:db8::/32"], list.Addresses.Select(a => a.Cidr));
        Assert.Equal("scanner", list.Addresses[0].Reason);
        Assert.Equal(["addr.blocked", "addr.blocked"], t.Db.Audit.List().Select(e => e.Event));
    }

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("abc")]
    [InlineData("::/129")]
    [InlineData("1.2.3.4/-1")]
    [InlineData("1.2.3/8")]
    [InlineData("1.2.3.4/")]
    [InlineData("")]
    public void Invalid_cidr_is_invalid_input_and_changes_nothing(string cidr)
    {
        using var t = new TestDatabase();
        t.Trust.BlockAddress("10.0.0.0/8");
        var before = t.Snapshot();
        var e = Assert.Throws<SecureMeshException>(() => t.Trust.BlockAddress(cidr));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.StartsWith("invalid address range", e.Message, StringComparison.Ordinal);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Trust.UnblockAddress(cidr)).Kind);
        Assert.Equal(before, t.Snapshot());
    }

    [Fact]
    public void Content_blocklist_add_duplicate_unknown_invalid()
    {
        using var t = new TestDatabase();
        var id = "b3:" + new string('a', 52);
        Assert.False(t.Trust.IsContentBlocked(id));
        t.Trust.BlockContent(id, "malware");
        Assert.True(t.Trust.IsContentBlocked(id));
        var before = t.Snapshot();
        Assert.Equal(SecureMeshErrorKind.Conflict, Assert.Throws<SecureMeshException>(() => t.Trust.BlockContent(id)).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Trust.BlockContent("sha256:abc")).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Trust.BlockContent("b3:" + new string('A', 52))).Kind);
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => t.Trust.UnblockContent("b3:" + new string('b', 52))).Kind);
        Assert.Equal(before, t.Snapshot());
        Assert.Equal("malware", Assert.Single(t.Trust.ListBlocklist().Content).Reason);
        t.Trust.UnblockContent(id);
        Assert.False(t.Trust.IsContentBlocked(id));
        Assert.Equal(["content.blocked", "content.unblocked"], t.Db.Audit.List().Select(e => e.Event));
    }

    [Fact]
    public void Reason_too_long_is_rejected_and_changes_nothing()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer);
        var before = t.Snapshot();
        var reason = new string('r', TrustStore.MaxReasonLength + 1);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Trust.Block(peer, reason)).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Trust.BlockAddress("10.0.0.0/8", reason)).Kind);
        Assert.Equal(before, t.Snapshot());
    }

    [Fact]
    public void Data_survives_reopen()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, "alice", ["192.0.2.7:4001"], trusted: true);
        t.Trust.BlockAddress("10.0.0.0/8");
        t.Reopen();
        Assert.Equal("alice", t.Trust.GetPeer(peer)!.Name);
        Assert.Equal(AuthorizationDecision.BlockedAddress, t.Trust.Authorize(peer, IPAddress.Parse("10.0.0.1")));
        Assert.True(t.Db.Audit.Verify().Ok);
    }
}
