namespace SecureMesh.Storage.Tests;

/// <summary>Issue 14: failed downloads are not resumed by themselves; a peer's bad-chunk count is stored.</summary>
public sealed class DownloadAndStrikeStoreTests
{
    private const string Cid = "b3:aebagbafaydqqcikbmga2dqpcaireeyuculbogazdinryhi6d4qa";

    [Fact]
    public void A_failed_download_is_kept_but_not_resumable_until_it_begins_again()
    {
        using var t = new TestDatabase();
        t.Db.Downloads.Begin(Cid, "x.bin", 10, 16384, new byte[] { 1 }, 1, null);
        Assert.Single(t.Db.Downloads.ListResumable());
        Assert.True(t.Db.Downloads.MarkFailed(Cid, "no peer could serve it"));
        Assert.Empty(t.Db.Downloads.ListResumable());
        Assert.Equal("no peer could serve it", Assert.Single(t.Db.Downloads.List()).Failed);
        t.Reopen();
        Assert.Empty(t.Db.Downloads.ListResumable());
        t.Db.Downloads.Begin(Cid, "x.bin", 10, 16384, new byte[] { 1 }, 1, null);
        Assert.Null(Assert.Single(t.Db.Downloads.ListResumable()).Failed);
    }

    [Fact]
    public void Strikes_count_up_survive_a_reopen_and_are_cleared_by_trusting_again()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, trusted: true);
        Assert.Equal(0, t.Trust.Strikes(peer));
        Assert.Equal(1, t.Trust.AddStrike(peer));
        Assert.Equal(2, t.Trust.AddStrike(peer));
        t.Reopen();
        Assert.Equal(2, t.Trust.Strikes(peer));
        Assert.Equal(3, t.Trust.AddStrike(peer));
        t.Trust.Block(peer, "lied");
        t.Trust.Trust(peer);
        Assert.Equal(0, t.Trust.Strikes(peer));
    }
}
