using SecureMesh.Storage;

namespace SecureMesh.Storage.Tests;

public sealed class CatalogAndDownloadStoreTests
{
    private static readonly string Cid1 = "b3:" + new string('a', 52);
    private static readonly string Cid2 = "b3:" + new string('b', 52);

    private static CatalogEntry Entry(string path, string root, string name, string cid) =>
        new(path, root, name, 10, 123, cid, 16384, DateTimeOffset.UnixEpoch, new byte[32], new byte[] { 1, 2, 3 });

    [Fact]
    public void Catalog_keeps_leaves_and_manifest_and_searches_every_term()
    {
        using var t = new TestDatabase();
        Assert.True(t.Db.Catalog.AddShare("/s"));
        Assert.False(t.Db.Catalog.AddShare("/s"));
        t.Db.Catalog.Upsert(Entry("/s/Holiday Photos.tar", "/s", "Holiday Photos.tar", Cid1));
        t.Db.Catalog.Upsert(Entry("/s/holiday_video.mp4", "/s", "holiday_video.mp4", Cid2));

        Assert.Equal(2, t.Db.Catalog.Search("HOLIDAY", 10).Count);
        Assert.Equal(Cid1, Assert.Single(t.Db.Catalog.Search("holiday photos", 10)).ContentId);
        // LIKE wildcards in a term are literal.
        Assert.Equal(Cid2, Assert.Single(t.Db.Catalog.Search("y_v", 10)).ContentId);
        Assert.Empty(t.Db.Catalog.Search("%", 10));

        var found = Assert.Single(t.Db.Catalog.FindByContentId(Cid1));
        Assert.Equal(32, found.Leaves.Length);
        Assert.Equal(new byte[] { 1, 2, 3 }, found.Manifest.ToArray());

        Assert.True(t.Db.Catalog.RemoveShare("/s"));
        Assert.Empty(t.Db.Catalog.List());
        Assert.Contains(t.Db.Audit.List(), e => e.Event == "share.removed");
    }

    [Fact]
    public void Catalog_keeps_the_file_identity_ctime_included_and_a_replaced_entry_takes_the_new_one()
    {
        using var t = new TestDatabase();
        t.Db.Catalog.Upsert(Entry("/s/a", "/s", "a", Cid1) with { Device = 7, Inode = 8, CtimeNs = 1_700_000_000_123_456_789 });
        var entry = t.Db.Catalog.Get("/s/a")!;
        Assert.Equal((7L, 8L, 1_700_000_000_123_456_789L), (entry.Device, entry.Inode, entry.CtimeNs));
        Assert.Equal(1_700_000_000_123_456_789L, Assert.Single(t.Db.Catalog.FindByContentId(Cid1)).CtimeNs);
        // Re-indexed with a ctime that was not settled: 0 replaces the old one (chunks are hashed again when served).
        t.Db.Catalog.Upsert(Entry("/s/a", "/s", "a", Cid2) with { Device = 7, Inode = 9 });
        Assert.Equal(0, t.Db.Catalog.Get("/s/a")!.CtimeNs);
    }

    [Fact]
    public void Search_matches_the_folders_a_file_is_in_from_the_shared_folder_down_but_nothing_above_it()
    {
        using var t = new TestDatabase();
        var cid3 = "b3:" + new string('c', 52);
        t.Db.Catalog.Upsert(Entry("/home/alice/Holidays/Rome 2024/img1.jpg", "/home/alice/Holidays", "img1.jpg", Cid1));
        t.Db.Catalog.Upsert(Entry("/home/alice/Holidays/notes.txt", "/home/alice/Holidays", "notes.txt", Cid2));
        // A shared single file: only its own name counts.
        t.Db.Catalog.Upsert(Entry("/home/alice/docs/report.pdf", "/home/alice/docs/report.pdf", "report.pdf", cid3));

        // The shared folder's own name finds everything inside it.
        Assert.Equal(2, t.Db.Catalog.Search("holidays", 10).Count);
        // A subfolder's name finds only what is in it; terms may mix folder and file names.
        Assert.Equal(Cid1, Assert.Single(t.Db.Catalog.Search("rome", 10)).ContentId);
        Assert.Equal(Cid1, Assert.Single(t.Db.Catalog.Search("2024 img1", 10)).ContentId);
        Assert.Empty(t.Db.Catalog.Search("rome notes", 10));
        // Folders above the share stay private: they are not on the peer's side of the share.
        Assert.Empty(t.Db.Catalog.Search("alice", 10));
        Assert.Empty(t.Db.Catalog.Search("home", 10));
        Assert.Empty(t.Db.Catalog.Search("docs", 10));
        Assert.Equal(cid3, Assert.Single(t.Db.Catalog.Search("report", 10)).ContentId);
    }

    [Fact]
    public void Verified_chunks_survive_a_reopen_and_are_dropped_when_the_part_file_is_new()
    {
        using var t = new TestDatabase();
        t.Db.Downloads.Begin(Cid1, "x", 100_000, 16384, new byte[] { 9 }, quarantineId: 1, outDir: null);
        t.Db.Downloads.MarkVerified(Cid1, [0, 3, 5]);
        t.Db.Downloads.MarkVerified(Cid1, [3]);
        t.Reopen();
        Assert.Equal([0L, 3, 5], t.Db.Downloads.VerifiedChunks(Cid1));
        t.Db.Downloads.Begin(Cid1, "x", 100_000, 16384, new byte[] { 9 }, quarantineId: 1, outDir: "/o");
        Assert.Equal(3, t.Db.Downloads.VerifiedChunks(Cid1).Count);
        Assert.Equal("/o", t.Db.Downloads.Get(Cid1)!.OutDir);
        t.Db.Downloads.Begin(Cid1, "x", 100_000, 16384, new byte[] { 9 }, quarantineId: 2, outDir: null);
        Assert.Empty(t.Db.Downloads.VerifiedChunks(Cid1));
        Assert.True(t.Db.Downloads.Remove(Cid1));
        Assert.Empty(t.Db.Downloads.List());
    }
}
