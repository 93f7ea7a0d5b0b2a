using System.Diagnostics;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// Issue 14, findings 2 and 7: what a shared folder offers. Hidden entries and what <c>.smignore</c> excludes stay out
/// unless asked for; links, FIFOs and sockets are skipped with the reason; a FIFO never stalls a share or a rescan.
/// </summary>
public sealed class ShareTreeTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("securemesh-tree-").FullName;
    private readonly SecureMeshDatabase _db;
    private readonly NodeIdentity _identity = NodeIdentity.Generate();

    public ShareTreeTests() => _db = SecureMeshDatabase.Open(_home);

    private string Shared => Path.Combine(_home, "shared");

    [Fact]
    public async Task Hidden_files_and_folders_are_not_shared_unless_included_and_the_choice_is_kept()
    {
        Write(".env", "API_KEY=1");
        Write(".git/config", "[remote]");
        Write("visible.txt", "hello");
        Write("sub/.hidden", "x");
        await using var shares = new ShareService(_db, _identity);

        var result = await shares.AddAsync(Shared, null, CancellationToken.None);
        Assert.Equal([Path.Combine(Shared, "visible.txt")], _db.Catalog.List().Select(e => e.Path));
        Assert.Equal(3, result.Skipped);
        var skipped = _db.Catalog.ListSkipped();
        Assert.Equal([Path.Combine(Shared, ".env"), Path.Combine(Shared, ".git"), Path.Combine(Shared, "sub", ".hidden")], skipped.Select(s => s.Path));
        Assert.All(skipped, s => Assert.Equal(ShareTree.HiddenReason, s.Reason));

        await shares.AddAsync(Shared, includeHidden: true, null, CancellationToken.None);
        Assert.Equal(4, _db.Catalog.List().Count);
        Assert.True(_db.Catalog.ListShares().Single().IncludeHidden);
        // A rescan (as at start) keeps the share's choice.
        await shares.RescanAsync(null, CancellationToken.None);
        Assert.Equal(4, _db.Catalog.List().Count);
        Assert.Empty(_db.Catalog.ListSkipped());

        await shares.AddAsync(Shared, includeHidden: false, null, CancellationToken.None);
        Assert.Single(_db.Catalog.List());
    }

    [Fact]
    public async Task A_smignore_file_excludes_what_it_names_with_nested_files_overriding()
    {
        Write(".smignore", "# not these\n*.log\n/private/\nbuild/\n!keep.log\ndocs/**/draft-*\n");
        Write("a.log", "x");
        Write("keep.log", "x");
        Write("private/key.pem", "x");
        Write("sub/private/fine.txt", "x");
        Write("sub/build/out.bin", "x");
        Write("docs/x/y/draft-1.md", "x");
        Write("docs/final.md", "x");
        Write("deep/.smignore", "!b.log\n");
        Write("deep/b.log", "x");
        Write("deep/c.log", "x");
        await using var shares = new ShareService(_db, _identity);
        await shares.AddAsync(Shared, null, CancellationToken.None);

        var shared = _db.Catalog.List().Select(e => Path.GetRelativePath(Shared, e.Path)).ToList();
        Assert.Equal(["deep/b.log", "docs/final.md", "keep.log", "sub/private/fine.txt"], shared);
        var skipped = _db.Catalog.ListSkipped().ToDictionary(s => Path.GetRelativePath(Shared, s.Path), s => s.Reason);
        Assert.Equal("excluded by .smignore", skipped["a.log"]);
        Assert.Equal("excluded by .smignore", skipped["private"]);
        Assert.Equal("excluded by .smignore", skipped["sub/build"]);
        Assert.Equal("excluded by .smignore", skipped["deep/c.log"]);
        Assert.False(skipped.ContainsKey("private/key.pem"), "an excluded folder is not entered");
    }

    [Fact]
    public async Task A_smignore_that_is_a_link_or_a_fifo_shares_nothing_of_its_folder()
    {
        Write("a/.keep", string.Empty);
        Write("a/secret.txt", "x");
        File.CreateSymbolicLink(Path.Combine(Shared, "a", ".smignore"), "/etc/hostname");
        Write("b/secret.txt", "x");
        MakeFifo(Path.Combine(Shared, "b", ".smignore"));
        Write("c/fine.txt", "x");
        await using var shares = new ShareService(_db, _identity);
        await shares.AddAsync(Shared, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal([Path.Combine(Shared, "c", "fine.txt")], _db.Catalog.List().Select(e => e.Path));
        var skipped = _db.Catalog.ListSkipped().Select(s => s.Path).ToList();
        Assert.Contains(Path.Combine(Shared, "a"), skipped);
        Assert.Contains(Path.Combine(Shared, "b"), skipped);
    }

    [Fact]
    public async Task Links_fifos_and_sockets_are_skipped_with_the_reason_and_never_stall_the_share()
    {
        Write("real.txt", "data");
        File.CreateSymbolicLink(Path.Combine(Shared, "link.txt"), Path.Combine(Shared, "real.txt"));
        Directory.CreateSymbolicLink(Path.Combine(Shared, "linkdir"), "/etc");
        MakeFifo(Path.Combine(Shared, "pipe"));
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(Shared, "sock")));
        await using var shares = new ShareService(_db, _identity);

        // Before the fix the FIFO's open waited for a writer for ever; the limit turns a hang into a failure.
        var result = await shares.AddAsync(Shared, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, result.Files);
        Assert.Empty(result.Failed);
        var skipped = _db.Catalog.ListSkipped().ToDictionary(s => Path.GetFileName(s.Path), s => s.Reason);
        Assert.StartsWith("a symbolic link", skipped["link.txt"], StringComparison.Ordinal);
        Assert.StartsWith("a symbolic link", skipped["linkdir"], StringComparison.Ordinal);
        Assert.StartsWith("a FIFO", skipped["pipe"], StringComparison.Ordinal);
        Assert.StartsWith("a socket", skipped["sock"], StringComparison.Ordinal);
        await shares.RescanAsync(null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        // Sharing the FIFO or the link itself is refused with the reason.
        var e = await Assert.ThrowsAsync<SecureMesh.Core.SecureMeshException>(() => shares.AddAsync(Path.Combine(Shared, "pipe"), null, CancellationToken.None));
        Assert.Contains("FIFO", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_replaced_by_a_fifo_after_indexing_is_dropped_by_the_rescan_without_a_hang()
    {
        Write("data.bin", "content");
        await using var shares = new ShareService(_db, _identity);
        await shares.AddAsync(Shared, null, CancellationToken.None);
        File.Delete(Path.Combine(Shared, "data.bin"));
        MakeFifo(Path.Combine(Shared, "data.bin"));
        await shares.RescanAsync(null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(_db.Catalog.List());
        Assert.Single(_db.Catalog.ListSkipped());
    }

    [Fact]
    public async Task A_file_replaced_by_another_with_the_same_size_and_time_is_indexed_again_and_an_old_entry_gains_its_inode()
    {
        Write("a.txt", "first");
        var path = Path.Combine(Shared, "a.txt");
        await using var shares = new ShareService(_db, _identity);
        await shares.AddAsync(Shared, null, CancellationToken.None);
        var before = _db.Catalog.Get(path)!;
        Assert.NotEqual(0, before.Inode);

        // Another file (another inode) with the same size and modification time.
        var time = File.GetLastWriteTimeUtc(path);
        File.WriteAllText(path + ".new", "other");
        File.SetLastWriteTimeUtc(path + ".new", time);
        File.Move(path + ".new", path, overwrite: true);
        var rescan = await shares.RescanAsync(null, CancellationToken.None);
        Assert.Equal(1, rescan.Indexed);
        var after = _db.Catalog.Get(path)!;
        Assert.NotEqual(before.Inode, after.Inode);
        Assert.NotEqual(before.ContentId, after.ContentId);

        // An entry written before device and inode were kept is not hashed again, only told which file it is.
        var full = _db.Catalog.FindByContentId(after.ContentId).Single();
        _db.Catalog.Upsert(full with { Device = 0, Inode = 0 });
        var again = await shares.RescanAsync(null, CancellationToken.None);
        Assert.Equal(0, again.Indexed);
        Assert.Equal(1, again.Unchanged);
        Assert.Equal(after.Inode, _db.Catalog.Get(path)!.Inode);
    }

    public void Dispose()
    {
        _db.Dispose();
        _identity.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    private void Write(string relative, string text)
    {
        var path = Path.Combine(Shared, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    internal static void MakeFifo(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var process = Process.Start("mkfifo", [path]);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
