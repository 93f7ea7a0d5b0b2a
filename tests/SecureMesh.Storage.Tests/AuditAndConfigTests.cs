using SecureMesh.Core;

namespace SecureMesh.Storage.Tests;

public sealed class AuditAndConfigTests
{
    private static TestDatabase WithEntries(int count)
    {
        var t = new TestDatabase();
        for (var i = 1; i <= count; i++)
        {
            t.Time.Advance(TimeSpan.FromSeconds(1));
            t.Db.Audit.Append("test.event", i % 2 == 0 ? TestDatabase.NewPeer() : null, $"entry {i}");
        }
        return t;
    }

    [Fact]
    public void Entries_chain_from_zero_and_verify()
    {
        using var t = WithEntries(5);
        var entries = t.Db.Audit.List();
        Assert.Equal([1L, 2, 3, 4, 5], entries.Select(e => e.Seq));
        Assert.Equal(new string('0', 64), entries[0].PrevHash);
        for (var i = 1; i < entries.Count; i++)
        {
            Assert.Equal(entries[i - 1].Hash, entries[i].PrevHash);
        }
        Assert.Equal(new DateTimeOffset(2026, 1, 2, 3, 4, 6, TimeSpan.Zero), entries[0].Time);
        Assert.Null(entries[0].PeerId);
        Assert.NotNull(entries[1].PeerId);
        // The head (newest seq and hash) is what a user keeps as an anchor against a cut tail.
        Assert.Equal(new AuditVerification(true, 5, null, null) { HeadSeq = 5, HeadHash = entries[^1].Hash }, t.Db.Audit.Verify());
    }

    [Fact]
    public void Empty_log_verifies()
    {
        using var t = new TestDatabase();
        Assert.Equal(new AuditVerification(true, 0, null, null), t.Db.Audit.Verify());
    }

    [Fact]
    public void Hash_is_stable_for_a_known_entry()
    {
        // Pins the canonical encoding: changing it would orphan every existing log.
        var hash = new byte[32];
        AuditLog.ComputeHash(1, 0, "peer.added", null, "", new byte[32], hash);
        var again = new byte[32];
        AuditLog.ComputeHash(1, 0, "peer.added", "", "", new byte[32], again);
        Assert.NotEqual(hash, again); // null and empty peer are distinct
        AuditLog.ComputeHash(1, 0, "peer.adde", null, "d", new byte[32], again);
        Assert.NotEqual(hash, again); // field boundaries are unambiguous
    }

    [Fact]
    public void Edited_detail_is_found_at_its_seq()
    {
        using var t = WithEntries(6);
        t.Sql("UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 4");
        var result = t.Db.Audit.Verify();
        Assert.False(result.Ok);
        Assert.Equal(4, result.BrokenSeq);
        Assert.Contains("altered", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Edited_time_or_event_is_found()
    {
        using var t = WithEntries(3);
        t.Sql("UPDATE audit_log SET time = time + 1 WHERE seq = 2");
        Assert.Equal(2, t.Db.Audit.Verify().BrokenSeq);
        using var u = WithEntries(3);
        u.Sql("UPDATE audit_log SET event = 'peer.nothing' WHERE seq = 1");
        Assert.Equal(1, u.Db.Audit.Verify().BrokenSeq);
    }

    [Fact]
    public void Hash_replaced_with_text_is_reported_not_thrown()
    {
        using var t = WithEntries(3);
        t.Sql("PRAGMA ignore_check_constraints = ON; UPDATE audit_log SET hash = 'x' WHERE seq = 2;");
        var result = t.Db.Audit.Verify();
        Assert.False(result.Ok);
        Assert.Equal(2, result.BrokenSeq);
    }

    [Fact]
    public void Deleted_entry_is_found_at_the_next_seq()
    {
        using var t = WithEntries(6);
        t.Sql("DELETE FROM audit_log WHERE seq = 3");
        var result = t.Db.Audit.Verify();
        Assert.False(result.Ok);
        Assert.Equal(4, result.BrokenSeq);
        Assert.Contains("missing", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncating_the_tail_is_not_detected_without_an_external_anchor()
    {
        // A documented limit (threat-model/threats.md, SECURITY.md): the chain proves the entries that are there, not that
        // none followed the last one. If this starts failing, tail truncation became detectable: update both documents.
        using var t = WithEntries(6);
        var before = t.Db.Audit.List();
        t.Sql("DELETE FROM audit_log WHERE seq >= 5");
        var result = t.Db.Audit.Verify();
        Assert.True(result.Ok);
        Assert.Equal(4, result.Entries);
        // What an anchor would catch: the newest hash the user noted down is no longer the head.
        Assert.NotEqual(before[^1].Hash, t.Db.Audit.List()[^1].Hash);
    }

    [Fact]
    public void Deleted_and_renumbered_entries_are_found()
    {
        using var t = WithEntries(6);
        t.Sql("DELETE FROM audit_log WHERE seq = 3; UPDATE audit_log SET seq = seq - 1 WHERE seq > 3;");
        var result = t.Db.Audit.Verify();
        Assert.False(result.Ok);
        Assert.Equal(3, result.BrokenSeq);
    }

    [Fact]
    public void Reordered_entries_are_found()
    {
        using var t = WithEntries(6);
        t.Sql("UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 5; UPDATE audit_log SET seq = 5 WHERE seq = -1;");
        var result = t.Db.Audit.Verify();
        Assert.False(result.Ok);
        Assert.Equal(2, result.BrokenSeq);
        Assert.Contains("reordered", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Appends_continue_the_chain_after_reopen_and_from_another_handle()
    {
        using var t = WithEntries(2);
        t.Reopen();
        using var other = SecureMeshDatabase.Open(t.Directory, t.Time);
        other.Audit.Append("peer.banned", "rate limit");
        t.Db.Audit.Append("quarantine.released", "id=1");
        Assert.Equal(new AuditVerification(true, 4, null, null) { HeadSeq = 4, HeadHash = t.Db.Audit.List()[^1].Hash }, t.Db.Audit.Verify());
    }

    [Fact]
    public void List_filters_by_time_and_keeps_the_newest_limit()
    {
        using var t = WithEntries(10);
        var since = new DateTimeOffset(2026, 1, 2, 3, 4, 5 + 7, TimeSpan.Zero);
        Assert.Equal([7L, 8, 9, 10], t.Db.Audit.List(since).Select(e => e.Seq));
        Assert.Equal([9L, 10], t.Db.Audit.List(limit: 2).Select(e => e.Seq));
        Assert.Equal([10L], t.Db.Audit.List(since, 1).Select(e => e.Seq));
        Assert.Empty(t.Db.Audit.List(limit: 0));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Db.Audit.List(limit: -1)).Kind);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Peer.Added")]
    [InlineData("peer added")]
    public void Bad_event_names_are_rejected_and_nothing_is_written(string eventName)
    {
        using var t = WithEntries(1);
        var e = Assert.Throws<SecureMeshException>(() => t.Db.Audit.Append(eventName, "d"));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Equal(1, t.Db.Audit.Count());
    }

    [Fact]
    public void Raw_peer_text_is_kept_for_ids_that_did_not_parse()
    {
        using var t = new TestDatabase();
        var entry = t.Db.Audit.AppendWithPeerText("handshake.rejected", "not-a-peer-id", "bad signature");
        Assert.Equal("not-a-peer-id", Assert.Single(t.Db.Audit.List()).PeerId);
        Assert.Equal(entry, t.Db.Audit.List()[0]);
        Assert.Equal(SecureMeshErrorKind.InvalidInput,
            Assert.Throws<SecureMeshException>(() => t.Db.Audit.AppendWithPeerText("x", new string('p', 129), "d")).Kind);
    }

    [Fact]
    public void Oversized_detail_is_rejected()
    {
        using var t = new TestDatabase();
        Assert.Throws<SecureMeshException>(() => t.Db.Audit.Append("x", new string('d', AuditLog.MaxDetailLength + 1)));
        Assert.Equal(0, t.Db.Audit.Count());
    }

    [Fact]
    public void Config_get_set_list_remove()
    {
        using var t = new TestDatabase();
        Assert.Null(t.Db.Config.Get("listen"));
        t.Db.Config.Set("listen", "0.0.0.0:4001");
        t.Db.Config.Set("download.dir", "/tmp/dl");
        t.Db.Config.Set("listen", "[::]:4001");
        Assert.Equal("[::]:4001", t.Db.Config.Get("listen"));
        Assert.Equal(["download.dir", "listen"], t.Db.Config.List().Select(p => p.Key));
        Assert.True(t.Db.Config.Remove("listen"));
        Assert.False(t.Db.Config.Remove("listen"));
        Assert.Null(t.Db.Config.Get("listen"));
        Assert.Equal(["config.set", "config.set", "config.set", "config.removed"], t.Db.Audit.List().Select(e => e.Event));
        Assert.DoesNotContain(t.Db.Audit.List(), e => e.Detail.Contains("/tmp/dl", StringComparison.Ordinal));
    }

    [Fact]
    public void Config_rejects_bad_keys()
    {
        using var t = new TestDatabase();
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Db.Config.Set(" ", "v")).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Db.Config.Set("a\nb", "v")).Kind);
        Assert.Empty(t.Db.Config.List());
        Assert.Equal(0, t.Db.Audit.Count());
    }
}
