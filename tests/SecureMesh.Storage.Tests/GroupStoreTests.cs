using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage.Tests;

public sealed class GroupStoreTests
{
    [Fact]
    public void Groups_are_created_filled_emptied_and_deleted_with_every_step_audited_and_a_peer_may_be_in_several()
    {
        using var t = new TestDatabase();
        var alice = TestDatabase.NewPeer();
        var bob = TestDatabase.NewPeer();
        t.Trust.AddPeer(alice, "alice", trusted: true);
        t.Trust.AddPeer(bob, "bob");
        t.Db.Groups.Create("family");
        t.Db.Groups.Create("work");
        Assert.Equal(2, t.Db.Groups.AddMembers("family", [alice, bob, alice]));
        Assert.Equal(0, t.Db.Groups.AddMembers("family", [alice]));
        Assert.Equal(1, t.Db.Groups.AddMembers("work", [alice]));

        var groups = t.Db.Groups.List();
        Assert.Equal(["family", "work"], groups.Select(g => g.Name));
        Assert.Equal(new[] { alice.Text, bob.Text }.Order(StringComparer.Ordinal), groups[0].Members.Select(p => p.Text));
        Assert.Equal([alice], groups[1].Members);

        Assert.Equal(1, t.Db.Groups.RemoveMembers("family", [bob]));
        Assert.Equal(0, t.Db.Groups.RemoveMembers("family", [bob]));
        t.Db.Groups.Delete("work");
        Assert.Equal(["family"], t.Db.Groups.List().Select(g => g.Name));

        var events = t.Db.Audit.List().Select(e => e.Event).ToList();
        Assert.Equal(2, events.Count(e => e == "group.created"));
        Assert.Equal(3, events.Count(e => e == "group.member_added"));
        Assert.Single(events, e => e == "group.member_removed");
        Assert.Single(events, e => e == "group.deleted");
        Assert.True(t.Db.Audit.Verify().Ok);
    }

    [Theory]
    [InlineData("")]
    [InlineData("all")]
    [InlineData("ALL")]
    [InlineData("nobody")]
    [InlineData("with space")]
    [InlineData("a,b")]
    [InlineData("fam\u202Eily")]
    [InlineData("x'); DROP TABLE peers; --")]
    public void Bad_group_names_are_invalid_input_and_change_nothing(string name)
    {
        using var t = new TestDatabase();
        var before = t.Snapshot() + Mine(t);
        var e = Assert.Throws<SecureMeshException>(() => t.Db.Groups.Create(name));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Equal(before, t.Snapshot() + Mine(t));
        Assert.Empty(t.Db.Groups.List());
    }

    [Fact]
    public void A_peer_id_is_not_a_group_name_and_unknown_groups_or_peers_change_nothing()
    {
        using var t = new TestDatabase();
        var known = TestDatabase.NewPeer();
        var stranger = TestDatabase.NewPeer();
        t.Trust.AddPeer(known, trusted: true);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => t.Db.Groups.Create(known.Text)).Kind);
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => t.Db.Groups.AddMembers("nope", [known])).Kind);
        t.Db.Groups.Create("family");
        Assert.Equal(SecureMeshErrorKind.Conflict, Assert.Throws<SecureMeshException>(() => t.Db.Groups.Create("family")).Kind);
        // One unknown peer in the list: none of them is added.
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => t.Db.Groups.AddMembers("family", [known, stranger])).Kind);
        Assert.Empty(t.Db.Groups.Get("family")!.Members);
    }

    [Fact]
    public void A_new_share_is_seen_by_all_an_audience_replaces_it_and_a_group_in_use_cannot_be_deleted()
    {
        using var t = new TestDatabase();
        var alice = TestDatabase.NewPeer();
        t.Trust.AddPeer(alice, trusted: true);
        t.Db.Groups.Create("family");
        t.Db.Catalog.AddShare("/srv/family");
        Assert.Equal(ShareAudience.Everyone, t.Db.Groups.GetAudience("/srv/family"));
        var stamps = t.Db.Groups.AccessStamps();

        Assert.True(t.Db.Groups.SetAudience("/srv/family", ShareAudience.Parse($"family, {alice.Text}")));
        Assert.False(t.Db.Groups.SetAudience("/srv/family", ShareAudience.Parse($"{alice.Text},family")));
        var audience = t.Db.Groups.GetAudience("/srv/family");
        Assert.Equal(["family"], audience.Groups);
        Assert.Equal([alice], audience.Peers);
        Assert.Equal($"family,{alice.Text}", audience.ToString());
        Assert.True(t.Db.Groups.AccessStamps().Audience > stamps.Audience);
        Assert.Single(t.Db.Audit.List(), e => e.Event == "share.audience" && e.Detail.Contains("from=all", StringComparison.Ordinal));

        var e = Assert.Throws<SecureMeshException>(() => t.Db.Groups.Delete("family"));
        Assert.Equal(SecureMeshErrorKind.Conflict, e.Kind);
        Assert.Contains("/srv/family", e.Message, StringComparison.Ordinal);

        // Removing the only named peer from the trust store leaves the group; removing the share forgets its audience.
        t.Trust.Remove(alice);
        Assert.Equal("family", t.Db.Groups.GetAudience("/srv/family").ToString());
        t.Db.Catalog.RemoveShare("/srv/family");
        Assert.Equal(0, t.Count("share_audience"));
        t.Db.Groups.Delete("family");
    }

    [Fact]
    public void Setting_an_audience_naming_an_unknown_group_or_peer_or_an_unshared_path_changes_nothing()
    {
        using var t = new TestDatabase();
        t.Db.Catalog.AddShare("/srv/work");
        var before = t.Snapshot() + Mine(t);
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => t.Db.Groups.SetAudience("/srv/work", ShareAudience.Parse("ghosts"))).Kind);
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => t.Db.Groups.SetAudience("/srv/work", ShareAudience.Parse(TestDatabase.NewPeer().Text))).Kind);
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => t.Db.Groups.SetAudience("/srv/other", ShareAudience.Everyone)).Kind);
        Assert.Equal(before, t.Snapshot() + Mine(t));
        Assert.Equal(ShareAudience.Everyone, t.Db.Groups.GetAudience("/srv/work"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" , ")]
    [InlineData("all,family")]
    [InlineData("family,bad name")]
    [InlineData("12D3KooWnotapeerid!")]
    public void Bad_audience_text_is_invalid_input(string text) =>
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => ShareAudience.Parse(text)).Kind);

    [Fact]
    public void Shares_that_existed_before_the_migration_keep_being_seen_by_every_trusted_peer()
    {
        using var t = new TestDatabase();
        t.Db.Dispose();
        File.Delete(t.FilePath);
        var before = Migrations.Steps.TakeWhile(s => !s.Contains("CREATE TABLE peer_groups", StringComparison.Ordinal)).ToArray();
        Assert.True(before.Length < Migrations.Steps.Length);
        using (SecureMeshDatabase.OpenFile(t.FilePath, t.Time, before))
        {
        }
        // Written as that version did: today's CatalogStore knows columns later steps add.
        t.Sql("INSERT INTO shares (path, added) VALUES ('/srv/old', 0)");
        t.Reopen();
        Assert.Equal(ShareAudience.Everyone, t.Db.Groups.GetAudience("/srv/old"));
    }

    [Fact]
    public void Access_stamps_move_only_for_what_decides_visibility()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        var start = t.Db.Groups.AccessStamps();
        // A stranger recorded as pending, or a trusted peer seen again, decides nothing.
        t.Trust.RecordPending(peer, "192.0.2.1:4001");
        t.Trust.TouchSeen(peer);
        Assert.Equal(start, t.Db.Groups.AccessStamps());
        t.Trust.Trust(peer);
        var trusted = t.Db.Groups.AccessStamps();
        Assert.True(trusted.Audience > start.Audience);
        t.Db.Catalog.AddShare("/srv/a");
        Assert.True(t.Db.Groups.AccessStamps().Catalog > trusted.Catalog);
        t.Trust.Block(peer);
        Assert.True(t.Db.Groups.AccessStamps().Audience > trusted.Audience);
    }

    private static string Mine(TestDatabase t) =>
        $"|groups={t.Count("peer_groups")},members={t.Count("peer_group_members")},audience={t.Count("share_audience")}";
}
