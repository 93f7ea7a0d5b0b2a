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
