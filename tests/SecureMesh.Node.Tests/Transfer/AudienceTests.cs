using System.Diagnostics;
using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// Who sees what, with real nodes on 127.0.0.1: A shares <c>family/</c> with the group <c>family</c> (B) and <c>work/</c>
/// with C alone. Each peer finds and fetches only its own; content outside a peer's audience is answered exactly like
/// content that does not exist; a membership change mid-transfer stops it.
/// </summary>
public sealed class AudienceTests
{
    private sealed record Setup(TransferNode A, TransferNode B, TransferNode C, string FamilyFile, ContentId Family, string WorkFile, ContentId Work) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await C.DisposeAsync();
            await B.DisposeAsync();
            await A.DisposeAsync();
        }
    }

    private static string Write(TransferNode node, string folder, string name, int length, int seed)
    {
        var dir = Path.Combine(node.Home, folder);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        File.WriteAllBytes(path, data);
        return path;
    }

    private static async Task<Setup> StartAsync(TransferOptions? seederOptions = null, int familySize = 5 * TransferNode.ChunkSize)
    {
        var a = TransferNode.Start(seederOptions);
        var b = TransferNode.Start();
        var c = TransferNode.Start();
        a.Trust(b);
        a.Trust(c);
        a.Db.Groups.Create("family");
        a.Db.Groups.AddMembers("family", [b.PeerId]);
        var familyFile = Write(a, "family", "holiday-photos.bin", familySize, 1);
        var workFile = Write(a, "work", "quarterly-plan.bin", 3 * TransferNode.ChunkSize, 2);
        await a.Transfer.Shares.AddAsync(Path.GetDirectoryName(familyFile)!, ShareAudience.Parse("family"), null, CancellationToken.None);
        await a.Transfer.Shares.AddAsync(Path.GetDirectoryName(workFile)!, ShareAudience.Parse(c.PeerId.Text), null, CancellationToken.None);
        var family = ContentId.Parse(a.Db.Catalog.Get(familyFile)!.ContentId);
        var work = ContentId.Parse(a.Db.Catalog.Get(workFile)!.ContentId);
        await b.ConnectAsync(a);
        await c.ConnectAsync(a);
        return new Setup(a, b, c, familyFile, family, workFile, work);
    }

    [Fact]
    public async Task Each_peer_finds_and_fetches_only_the_shares_whose_audience_it_is_in()
    {
        await using var s = await StartAsync();

        var bHits = await s.B.Transfer.SearchAsync("bin", CancellationToken.None);
        Assert.Equal([s.Family.Text], bHits.Select(h => h.ContentId));
        Assert.Equal("holiday-photos.bin", Assert.Single(bHits).Name);
        var cHits = await s.C.Transfer.SearchAsync("bin", CancellationToken.None);
        Assert.Equal([s.Work.Text], cHits.Select(h => h.ContentId));
        // A term that only the hidden file matches finds nothing at all.
        Assert.Empty(await s.C.Transfer.SearchAsync("holiday", CancellationToken.None));

        var bFamily = await s.B.Transfer.StartDownload(s.Family).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(bFamily.State == DownloadState.Released, bFamily.Reason);
        Assert.Equal(File.ReadAllBytes(s.FamilyFile), File.ReadAllBytes(bFamily.Path!));
        var cWork = await s.C.Transfer.StartDownload(s.Work).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(cWork.State == DownloadState.Released, cWork.Reason);
        Assert.Equal(File.ReadAllBytes(s.WorkFile), File.ReadAllBytes(cWork.Path!));

        var bWork = await s.B.Transfer.StartDownload(s.Work).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DownloadState.Failed, bWork.State);
        Assert.Null(bWork.Path);
    }

    [Fact]
    public async Task A_get_of_content_outside_the_audience_fails_exactly_like_an_unknown_id_and_nothing_of_it_reaches_the_disk()
    {
        await using var s = await StartAsync();
        var unknown = ContentId.FromHash(Enumerable.Repeat((byte)0x5A, 32).ToArray());

        // C learnt the family ID elsewhere (a leaked link, say) and asks for it by ID.
        var hidden = await s.C.Transfer.StartDownload(s.Family).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        var missing = await s.C.Transfer.StartDownload(unknown).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DownloadState.Failed, hidden.State);
        Assert.Equal(missing.State, hidden.State);
        Assert.Equal(missing.Reason!.Replace(unknown.Text, "ID", StringComparison.Ordinal), hidden.Reason!.Replace(s.Family.Text, "ID", StringComparison.Ordinal));
        Assert.Contains("content not shared here", hidden.Reason, StringComparison.Ordinal);
        Assert.Null(hidden.QuarantineId);

        // Nothing of it anywhere in C's data directory: no quarantine item, no part file, no download record, no bytes.
        Assert.DoesNotContain(s.C.Db.Quarantine.List(), q => q.ContentId == s.Family.Text);
        Assert.Empty(s.C.Db.Downloads.List());
        var family = File.ReadAllBytes(s.FamilyFile);
        var firstChunk = family.AsSpan(0, TransferNode.ChunkSize).ToArray();
        foreach (var file in Directory.EnumerateFiles(s.C.Home, "*", SearchOption.AllDirectories))
        {
            var bytes = File.ReadAllBytes(file);
            Assert.True(bytes.AsSpan().IndexOf(firstChunk.AsSpan(0, 4096)) < 0, $"{file} holds family bytes");
        }
    }

    [Fact]
    public async Task Manifest_have_and_chunk_replies_for_content_outside_the_audience_are_byte_identical_to_those_for_unknown_content()
    {
        await using var s = await StartAsync();
        await using var stranger = await RawPeer.ConnectAsync(s.A);
        var unknown = ContentId.FromHash(Enumerable.Repeat((byte)0xA5, 32).ToArray());
        var requests = new Func<uint, ContentId, WireMessage>[]
        {
            (rid, id) => new ManifestRequest(rid, id),
            (rid, id) => new HaveRequest(rid, id),
            (rid, id) => new ChunkRequest(rid, id, 0),
            (rid, id) => new ChunkRequest(rid, id, 4),
            (rid, id) => new ChunkRequest(rid, id, 1000),
        };
        foreach (var make in requests)
        {
            await stranger.SendAsync(make(7, s.Family));
            var forHidden = await ReceiveRawAsync(stranger);
            await stranger.SendAsync(make(7, unknown));
            var forUnknown = await ReceiveRawAsync(stranger);
            Assert.Equal(forUnknown, forHidden);
            var error = Assert.IsType<ErrorMessage>(WireCodec.Decode(forHidden));
            Assert.Equal(WireErrorCode.NotFound, error.Code);
        }
        // Blocking the hidden content changes nothing for someone who may not see it: still "not found", not "blocked".
        s.A.Db.Trust.BlockContent(s.Family.Text, "test");
        await stranger.SendAsync(new ManifestRequest(8, s.Family));
        var blockedHidden = await ReceiveRawAsync(stranger);
        await stranger.SendAsync(new ManifestRequest(8, unknown));
        Assert.Equal(await ReceiveRawAsync(stranger), blockedHidden);

        // The same peer in the audience gets the real thing, so the refusals above are the audience's doing.
        s.A.Db.Trust.UnblockContent(s.Family.Text);
        s.A.Db.Groups.AddMembers("family", [stranger.Identity.PeerId]);
        s.A.Transfer.RefreshAccess();
        await stranger.SendAsync(new ManifestRequest(9, s.Family));
        Assert.IsType<ManifestResponse>(WireCodec.Decode(await ReceiveRawAsync(stranger)));
    }

    [Fact]
    public async Task Search_results_never_name_a_hidden_copy_of_content_that_is_also_in_a_visible_share()
    {
        await using var s = await StartAsync();
        // The same bytes under another name in work/: C may have them, but only under the work name.
        var copy = Path.Combine(Path.GetDirectoryName(s.WorkFile)!, "budget.bin");
        File.Copy(s.FamilyFile, copy);
        await s.A.Transfer.Shares.RescanAsync(null, CancellationToken.None);
        s.A.Transfer.RefreshAccess();

        var hits = await s.C.Transfer.SearchAsync("bin", CancellationToken.None);
        var hit = Assert.Single(hits, h => h.ContentId == s.Family.Text);
        Assert.Equal("budget.bin", hit.Name);
        Assert.Empty(await s.C.Transfer.SearchAsync("holiday", CancellationToken.None));

        var result = await s.C.Transfer.StartDownload(s.Family).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal("budget.bin", Path.GetFileName(result.Path));

        // And B, in the family audience only, gets the family name, whichever copy the seeder looks at first.
        var bHit = Assert.Single(await s.B.Transfer.SearchAsync("bin", CancellationToken.None));
        Assert.Equal("holiday-photos.bin", bHit.Name);
        var bResult = await s.B.Transfer.StartDownload(s.Family).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(bResult.State == DownloadState.Released, bResult.Reason);
        Assert.Equal("holiday-photos.bin", Path.GetFileName(bResult.Path));
    }

    [Fact]
    public async Task Removing_a_member_while_it_downloads_stops_the_transfer_and_is_audited()
    {
        // 40 chunks at 64 KiB/s: about ten seconds, so the change lands mid-transfer.
        await using var s = await StartAsync(TransferNode.Fast(o => o.UploadLimit = 64 * 1024), familySize: 40 * TransferNode.ChunkSize);
        var handle = s.B.Transfer.StartDownload(s.Family);
        await Wait.UntilAsync(() => handle.Progress.BytesDone >= 4 * TransferNode.ChunkSize, TimeSpan.FromSeconds(20), "the first chunks");

        // Another process (the CLI) removes B from the group: the running node notices through the database.
        using (var cli = SecureMeshDatabase.Open(s.A.Home))
        {
            Assert.Equal(1, cli.Groups.RemoveMembers("family", [s.B.PeerId]));
        }
        var removedAt = Stopwatch.GetTimestamp();
        var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        var stoppedAfter = Stopwatch.GetElapsedTime(removedAt);

        Assert.Equal(DownloadState.Failed, result.State);
        Assert.True(handle.Progress.BytesDone < 40 * TransferNode.ChunkSize, "the whole file arrived anyway");
        // Within a second (the node polls every 250 ms); generous here for a loaded machine.
        Assert.True(stoppedAfter < TimeSpan.FromSeconds(3), $"the download ran on for {stoppedAfter.TotalMilliseconds:0} ms");
        await Wait.UntilAsync(() => s.A.Db.Audit.List().Any(e => e.Event == "transfer.cut" && e.PeerId == s.B.PeerId.Text), TimeSpan.FromSeconds(5), "the cut in the audit log");
        var audit = s.A.Db.Audit.List();
        Assert.Contains(audit, e => e.Event == "group.member_removed" && e.PeerId == s.B.PeerId.Text && e.Detail.Contains("group=family", StringComparison.Ordinal));
        Assert.Contains(audit, e => e.Event == "transfer.cut" && e.PeerId == s.B.PeerId.Text && e.Detail.Contains(s.Family.Text, StringComparison.Ordinal));

        // Nothing more of it is served to B, and B's session stays open for what it may still see.
        Assert.False(s.A.Transfer.Access.CanSee(s.B.PeerId, s.Family.Text));
        await Task.Delay(300);
        var servedBefore = s.A.Transfer.ChunksServed;
        var retry = await s.B.Transfer.StartDownload(s.Family).Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(DownloadState.Failed, retry.State);
        Assert.Contains("content not shared here", retry.Reason, StringComparison.Ordinal);
        Assert.Equal(servedBefore, s.A.Transfer.ChunksServed);
        Assert.Contains(s.B.Transfer.OpenSessions(), p => p.PeerId.Equals(s.A.PeerId));
    }

    [Fact]
    public async Task A_removal_seen_first_by_a_refused_request_still_cuts_the_transfer_at_the_next_refresh()
    {
        // The poll is slow here, so the test decides the order: a refused request (C asking for what it may not see)
        // rebuilds the snapshot after B's removal before the refresh runs; the refresh must still cut B's transfer
        // (and audit it) although it finds the snapshot already current.
        await using var s = await StartAsync(TransferNode.Fast(o =>
        {
            o.UploadLimit = 64 * 1024;
            o.AccessPoll = TimeSpan.FromHours(1);
        }), familySize: 40 * TransferNode.ChunkSize);
        s.A.Transfer.RefreshAccess();
        var handle = s.B.Transfer.StartDownload(s.Family);
        await Wait.UntilAsync(() => handle.Progress.BytesDone >= 4 * TransferNode.ChunkSize, TimeSpan.FromSeconds(20), "the first chunks");

        using (var cli = SecureMeshDatabase.Open(s.A.Home))
        {
            Assert.Equal(1, cli.Groups.RemoveMembers("family", [s.B.PeerId]));
        }
        Assert.False(s.A.Transfer.Access.CanSee(s.C.PeerId, s.Family.Text));
        Assert.False(s.A.Transfer.Access.CanSee(s.B.PeerId, s.Family.Text));
        s.A.Transfer.RefreshAccess();

        Assert.Contains(s.A.Db.Audit.List(), e => e.Event == "transfer.cut" && e.PeerId == s.B.PeerId.Text && e.Detail.Contains(s.Family.Text, StringComparison.Ordinal));
        var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(DownloadState.Failed, result.State);
    }

    [Fact]
    public async Task A_share_with_all_is_seen_by_every_trusted_peer_but_never_by_a_pending_or_blocked_one()
    {
        await using var s = await StartAsync();
        var everyone = Write(s.A, "public", "readme.bin", 2 * TransferNode.ChunkSize, 3);
        await s.A.Transfer.Shares.AddAsync(Path.GetDirectoryName(everyone)!, ShareAudience.Everyone, null, CancellationToken.None);
        var id = ContentId.Parse(s.A.Db.Catalog.Get(everyone)!.ContentId).Text;
        s.A.Transfer.RefreshAccess();
        Assert.Contains(await s.B.Transfer.SearchAsync("readme", CancellationToken.None), h => h.ContentId == id);
        Assert.Contains(await s.C.Transfer.SearchAsync("readme", CancellationToken.None), h => h.ContentId == id);

        // A blocked peer named in an audience still sees nothing (and loses its session as before).
        s.A.Db.Trust.Block(s.B.PeerId, "test");
        s.A.Transfer.RefreshAccess();
        Assert.False(s.A.Transfer.Access.CanSee(s.B.PeerId, id));
        Assert.False(s.A.Transfer.Access.CanSee(s.B.PeerId, s.Family.Text));
        s.A.Db.Trust.Unblock(s.B.PeerId);
        s.A.Transfer.RefreshAccess();
        Assert.False(s.A.Transfer.Access.CanSee(s.B.PeerId, s.Family.Text));
        s.A.Db.Trust.Trust(s.B.PeerId);
        s.A.Transfer.RefreshAccess();
        Assert.True(s.A.Transfer.Access.CanSee(s.B.PeerId, s.Family.Text));
    }

    private static async Task<byte[]> ReceiveRawAsync(RawPeer peer)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        return (await peer.Connection.ReceiveAsync(cts.Token)).ToArray();
    }
}
