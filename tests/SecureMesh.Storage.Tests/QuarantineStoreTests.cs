using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage.Tests;

public sealed class QuarantineStoreTests
{
    private const string Cid = "b3:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    private static PeerId NewPeer()
    {
        using var identity = NodeIdentity.Generate();
        return identity.PeerId;
    }

    [Fact]
    public void Add_hold_and_manual_release_are_audited_with_the_held_reason()
    {
        using var t = new TestDatabase();
        var publisher = NewPeer();
        var source = NewPeer();
        var item = t.Db.Quarantine.Add(Cid, "../evil name.txt", "evil name.txt", 42, publisher, [source, publisher], id => $"/q/{id}.part");
        Assert.Equal(QuarantineState.Downloading, item.State);
        Assert.Equal($"/q/{item.Id}.part", item.Path);
        Assert.Equal("../evil name.txt", item.AnnouncedName);
        Assert.Equal([source, publisher], item.SourcePeers);
        Assert.Equal(publisher, item.Publisher);

        t.Db.Quarantine.MarkVerifying(item.Id, "/q/1-evil name.txt");
        var held = t.Db.Quarantine.Hold(item.Id, "scanner 'clamscan' flagged the file: Eicar FOUND", verified: true);
        Assert.Equal(QuarantineState.Held, held.State);
        Assert.True(held.Verified);

        var released = t.Db.Quarantine.MarkReleased(item.Id, "/home/u/Downloads/evil name.txt", manual: true);
        Assert.Equal(QuarantineState.Released, released.State);
        Assert.Null(released.Path);
        Assert.Equal("scanner 'clamscan' flagged the file: Eicar FOUND", released.Reason);

        var events = t.Db.Audit.List().Select(e => e.Event).ToList();
        Assert.Equal(["quarantine.added", "quarantine.held", "quarantine.released"], events);
        var release = t.Db.Audit.List()[^1];
        Assert.Equal(publisher.Text, release.PeerId);
        Assert.Contains("mode=manual", release.Detail, StringComparison.Ordinal);
        Assert.Contains("held_reason=\"scanner 'clamscan' flagged the file: Eicar FOUND\"", release.Detail, StringComparison.Ordinal);
        Assert.True(t.Db.Audit.Verify().Ok);
    }

    [Fact]
    public void Final_states_refuse_further_changes_and_unknown_ids_are_not_found()
    {
        using var t = new TestDatabase();
        var item = t.Db.Quarantine.Add(Cid, null, "download", 1, null, null, id => $"/q/{id}.part");
        t.Db.Quarantine.MarkDeleted(item.Id, "user deleted it");
        var before = t.Db.Audit.Count();
        var again = Assert.Throws<SecureMeshException>(() => t.Db.Quarantine.MarkDeleted(item.Id, "again"));
        Assert.Equal(SecureMeshErrorKind.Conflict, again.Kind);
        Assert.Contains("deleted", again.Message, StringComparison.Ordinal);
        Assert.Throws<SecureMeshException>(() => t.Db.Quarantine.MarkReleased(item.Id, "/x", manual: true));
        Assert.Equal(before, t.Db.Audit.Count());
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => t.Db.Quarantine.Hold(999, "x", false)).Kind);
        Assert.Null(t.Db.Quarantine.Get(999));
    }

    [Fact]
    public void Auto_release_needs_verifying_and_list_active_skips_final_items()
    {
        using var t = new TestDatabase();
        var a = t.Db.Quarantine.Add(Cid, "a", "a", 1, null, null, id => $"/q/{id}.part");
        var b = t.Db.Quarantine.Add(Cid, "b", "b", 1, null, null, id => $"/q/{id}.part");
        Assert.Equal(SecureMeshErrorKind.Conflict,
            Assert.Throws<SecureMeshException>(() => t.Db.Quarantine.MarkReleased(a.Id, "/d/a", manual: false)).Kind);
        t.Db.Quarantine.MarkVerifying(a.Id, "/q/a");
        var released = t.Db.Quarantine.MarkReleased(a.Id, "/d/a", manual: false);
        Assert.True(released.Verified);
        Assert.Contains("mode=auto", t.Db.Audit.List()[^1].Detail, StringComparison.Ordinal);
        Assert.Equal([b.Id], t.Db.Quarantine.ListActive(Cid).Select(i => i.Id));
        Assert.Equal(2, t.Db.Quarantine.List().Count);
        Assert.Single(t.Db.Quarantine.List(QuarantineState.Released));
    }
}
