using SecureMesh.Core.Content;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// Issue 14, finding 1: a shared file or folder swapped for a symbolic link after it was indexed must never let a
/// trusted peer fetch what the link points at, neither through the old content ID, nor a re-index, nor a rescan.
/// Two real nodes on 127.0.0.1.
/// </summary>
public sealed class ShareEscapeTests
{
    [Fact]
    public async Task A_shared_file_replaced_by_a_same_size_symlink_to_a_secret_never_serves_the_secret()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        var outside = Directory.CreateDirectory(Path.Combine(a.Home, "private")).FullName;
        var secret = new byte[300];
        new Random(7).NextBytes(secret);
        var secretPath = Path.Combine(outside, "identity.key");
        File.WriteAllBytes(secretPath, secret);
        var secretId = FileIndexer.Index(File.OpenHandle(secretPath), TransferNode.ChunkSize).ContentId.Text;

        var notes = a.WriteFile("notes.txt", secret.Length, seed: 3);
        var shared = Path.GetDirectoryName(notes)!;
        await a.Transfer.Shares.AddAsync(shared, null, CancellationToken.None);
        var oldId = ContentId.Parse(a.Db.Catalog.Get(notes)!.ContentId);
        await b.ConnectAsync(a);

        // The link's own size equals the secret's (extra slashes), so a size check on the link itself passes too.
        File.Delete(notes);
        var target = outside + new string('/', secret.Length - outside.Length - "identity.key".Length) + "identity.key";
        Assert.Equal(secret.Length, target.Length);
        File.CreateSymbolicLink(notes, target);

        await FetchEverythingAsync(a, b, oldId, "notes", secret);
        await a.Transfer.Shares.RescanAsync(null, CancellationToken.None);
        await FetchEverythingAsync(a, b, oldId, "notes", secret);
        Assert.DoesNotContain(a.Db.Catalog.List(), e => e.ContentId == secretId);
        Assert.Contains(a.Db.Catalog.ListSkipped(), s => s.Path == notes && s.Reason.Contains("symbolic link", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_shared_subfolder_replaced_by_a_symlink_to_an_outside_folder_leaks_nothing()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        var outside = Directory.CreateDirectory(Path.Combine(a.Home, "private")).FullName;
        var secret = new byte[5 * TransferNode.ChunkSize + 123];
        new Random(8).NextBytes(secret);
        File.WriteAllBytes(Path.Combine(outside, "report.txt"), secret);

        var shared = Directory.CreateDirectory(Path.Combine(a.Home, "shared")).FullName;
        var sub = Directory.CreateDirectory(Path.Combine(shared, "sub")).FullName;
        File.WriteAllBytes(Path.Combine(sub, "report.txt"), new byte[1000]);
        await a.Transfer.Shares.AddAsync(shared, null, CancellationToken.None);
        var oldId = ContentId.Parse(a.Db.Catalog.Get(Path.Combine(sub, "report.txt"))!.ContentId);
        await b.ConnectAsync(a);

        Directory.Delete(sub, recursive: true);
        Directory.CreateSymbolicLink(sub, outside);

        await FetchEverythingAsync(a, b, oldId, "report", secret);
        await a.Transfer.Shares.RescanAsync(null, CancellationToken.None);
        await FetchEverythingAsync(a, b, oldId, "report", secret);
        Assert.DoesNotContain(a.Db.Catalog.List(), e => e.Path.StartsWith(sub + "/", StringComparison.Ordinal));
        Assert.Contains(a.Db.Catalog.ListSkipped(), s => s.Path == sub && s.Reason.Contains("symbolic link", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_download_folder_swapped_for_a_link_never_receives_the_peers_file()
    {
        // Finding 6: with download-dir a link to ~/.ssh, a peer's authorized_keys was released into it.
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        b.Db.Config.Set(NodeSettings.DownloadDir, NodeSettings.Get(NodeSettings.DownloadDir).Normalize(b.Downloads));
        Directory.CreateDirectory(b.Downloads);
        var ssh = Directory.CreateDirectory(Path.Combine(b.Home, "dot-ssh")).FullName;
        Directory.Delete(b.Downloads);
        Directory.CreateSymbolicLink(b.Downloads, ssh);
        var keys = a.WriteFile("authorized_keys", 400, seed: 9);
        var id = await a.ShareAsync(keys);
        await b.ConnectAsync(a);

        var result = await b.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DownloadState.Held, result.State);
        Assert.Contains("symbolic link", result.Reason, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(ssh));
        var item = Assert.Single(b.Transfer.Quarantine.List());
        Assert.Equal(File.ReadAllBytes(keys), File.ReadAllBytes(item.Path!));
    }

    [Fact]
    public async Task An_out_folder_given_as_a_link_is_resolved_when_the_download_starts()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        var real = Directory.CreateDirectory(Path.Combine(b.Home, "real-out")).FullName;
        var link = Path.Combine(b.Home, "out-link");
        Directory.CreateSymbolicLink(link, real);
        var id = await a.ShareAsync(a.WriteFile("out.bin", 500, seed: 2));
        await b.ConnectAsync(a);
        var result = await b.Transfer.StartDownload(id, link).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(Path.Combine(real, "out.bin"), result.Path);
    }

    [Fact]
    public async Task A_peers_file_name_never_reaches_the_scanner()
    {
        // Finding 5: "{}" was spliced into arguments and the quarantined file kept a name derived from the peer's, so
        // a scanner set to sh -c '… "{}"' ran a command hidden in a peer's file name.
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        var work = Directory.CreateDirectory(Path.Combine(b.Home, "work")).FullName;
        var args = Path.Combine(work, "args");
        var path = a.WriteFile("report$(touch PWNED).txt", 1000, seed: 4);
        var id = await a.ShareAsync(path);
        await b.ConnectAsync(a);

        // A setting stored before such settings were refused: it holds the file, and runs nothing.
        b.Db.Config.Set(NodeSettings.Scanner, $"sh -c 'cd {work} && : \"{{}}\"'");
        var first = await b.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DownloadState.Held, first.State);
        Assert.Contains("scanner setting is invalid", first.Reason, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(work, "PWNED")));
        b.Transfer.Quarantine.Delete(Assert.Single(b.Transfer.Quarantine.List(), i => i.State == SecureMesh.Storage.QuarantineState.Held).Id);

        // A valid scanner gets a path the node made.
        b.Db.Config.Set(NodeSettings.Scanner, NodeSettings.Get(NodeSettings.Scanner).Normalize($"sh -c 'printf %s \"$1\" > {args}' scan {{}}"));
        var second = await b.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(second.State == DownloadState.Released, second.Reason);
        var scanned = File.ReadAllText(args);
        Assert.Matches(@"/quarantine/[0-9]+\.data$", scanned);
        Assert.DoesNotContain("report", scanned, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(work, "PWNED")));
        Assert.EndsWith("report$(touch PWNED).txt", second.Path, StringComparison.Ordinal);
    }

    /// <summary>B asks for the old content ID (which makes A notice the change), then fetches every hit of a new search.</summary>
    private static async Task FetchEverythingAsync(TransferNode a, TransferNode b, ContentId oldId, string terms, byte[] secret)
    {
        var first = await b.Transfer.StartDownload(oldId).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        if (first.Path is { } p1 && File.Exists(p1))
        {
            Assert.NotEqual(secret, File.ReadAllBytes(p1));
        }
        await a.Transfer.Shares.WhenIdleAsync();
        foreach (var hit in await b.Transfer.SearchAsync(terms, CancellationToken.None))
        {
            var result = await b.Transfer.StartDownload(ContentId.Parse(hit.ContentId)).Completion.WaitAsync(TimeSpan.FromSeconds(30));
            if (result.Path is { } p && File.Exists(p))
            {
                Assert.NotEqual(secret, File.ReadAllBytes(p));
            }
        }
        // Neither released nor held in quarantine: no file anywhere in B's data directory holds the secret.
        foreach (var file in Directory.EnumerateFiles(b.Home, "*", SearchOption.AllDirectories))
        {
            if (new FileInfo(file).Length == secret.Length)
            {
                Assert.NotEqual(secret, File.ReadAllBytes(file));
            }
        }
    }
}
