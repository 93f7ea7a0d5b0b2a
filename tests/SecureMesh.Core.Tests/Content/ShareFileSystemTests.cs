using System.Diagnostics;
using System.Net.Sockets;
using SecureMesh.Core.Content;

namespace SecureMesh.Core.Tests.Content;

/// <summary>
/// The no-follow opener, attacked with links at the last and at middle components, "..", FIFOs and sockets, through
/// both <c>openat2</c> and the component-wise <c>openat</c> walk the node uses where the kernel lacks it.
/// </summary>
public sealed class ShareFileSystemTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-fs-").FullName;

    public static TheoryData<bool> Modes => new() { false, true };

    private string Shared => Path.Combine(_root, "shared");

    private string Outside => Path.Combine(_root, "outside");

    public ShareFileSystemTests()
    {
        Directory.CreateDirectory(Path.Combine(Shared, "sub"));
        Directory.CreateDirectory(Outside);
        File.WriteAllText(Path.Combine(Shared, "sub", "a.txt"), "inside");
        File.WriteAllText(Path.Combine(Outside, "secret.txt"), "secret");
    }

    [Fact]
    public void A_ctime_is_settled_only_once_older_than_the_coarsest_granularity_it_could_have()
    {
        const long Ns = 1_700_000_000_123_456_789;
        Assert.False(ShareFileSystem.CtimeSettled(Ns, Ns));
        Assert.True(ShareFileSystem.CtimeSettled(Ns, Ns + 1));
        // A ctime in whole seconds may come from a file system that keeps whole seconds: a change later in that second
        // would keep it, so it is settled only a second (or, in even seconds, two: FAT) later.
        const long Odd = 1_700_000_001_000_000_000;
        Assert.False(ShareFileSystem.CtimeSettled(Odd, Odd + 999_999_999));
        Assert.True(ShareFileSystem.CtimeSettled(Odd, Odd + 1_000_000_000));
        const long Even = 1_700_000_000_000_000_000;
        Assert.False(ShareFileSystem.CtimeSettled(Even, Even + 1_999_999_999));
        Assert.True(ShareFileSystem.CtimeSettled(Even, Even + 2_000_000_000));
        const long Milli = 1_700_000_000_123_000_000;
        Assert.False(ShareFileSystem.CtimeSettled(Milli, Milli + 999_999));
        Assert.True(ShareFileSystem.CtimeSettled(Milli, Milli + 1_000_000));
        // In the future (a clock set back), unknown, or no clock: never.
        Assert.False(ShareFileSystem.CtimeSettled(Ns, Ns - 1));
        Assert.False(ShareFileSystem.CtimeSettled(0, Ns));
        Assert.False(ShareFileSystem.CtimeSettled(Ns, 0));
    }

    [Fact]
    public void The_ctime_is_read_and_moves_on_a_write_even_when_the_mtime_is_put_back()
    {
        var path = Path.Combine(Shared, "sub", "a.txt");
        var before = ShareFileSystem.Lstat(path)!.Value;
        if (!ShareFileSystem.IsNative)
        {
            Assert.Equal(0, before.CtimeNs);
            return;
        }
        Assert.NotEqual(0, before.CtimeNs);
        Assert.True(ShareFileSystem.CoarseNowNs() >= before.CtimeNs - 1_000_000_000);
        var mtime = File.GetLastWriteTimeUtc(path);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!ShareFileSystem.CtimeSettled(before.CtimeNs, ShareFileSystem.CoarseNowNs()) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(5);
        }
        File.WriteAllText(path, "INSIDE");
        File.SetLastWriteTimeUtc(path, mtime);
        var after = ShareFileSystem.Lstat(path)!.Value;
        Assert.Equal(before.MtimeNs, after.MtimeNs);
        Assert.NotEqual(before.CtimeNs, after.CtimeNs);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_regular_file_opens_and_its_handle_is_the_file_lstat_sees(bool walk)
    {
        using var mode = Mode(walk);
        var path = Path.Combine(Shared, "sub", "a.txt");
        using var handle = ShareFileSystem.OpenShared(Shared, path, out var opened);
        var seen = ShareFileSystem.Lstat(path)!.Value;
        Assert.Equal(FileKind.Regular, opened.Kind);
        Assert.Equal(seen, opened);
        Assert.NotEqual(0, opened.Inode);
        Assert.Equal(6, opened.Size);
        // The same time .NET reports, so catalogs written before keep matching.
        Assert.Equal((File.GetLastWriteTimeUtc(path).Ticks - DateTime.UnixEpoch.Ticks) * 100, opened.MtimeNs);
        var buffer = new byte[6];
        Assert.Equal(6, RandomAccess.Read(handle, buffer, 0));
        Assert.Equal("inside"u8.ToArray(), buffer);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_file_that_is_a_symlink_is_refused(bool walk)
    {
        using var mode = Mode(walk);
        var link = Path.Combine(Shared, "notes.txt");
        File.CreateSymbolicLink(link, Path.Combine(Outside, "secret.txt"));
        Assert.Equal(FileKind.SymbolicLink, ShareFileSystem.Lstat(link)!.Value.Kind);
        var e = Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenShared(Shared, link, out _));
        Assert.Contains("symbolic link", e.Message, StringComparison.Ordinal);
        // Even without the lstat first (the race it cannot close), the open itself refuses the link.
        using var dir = ShareFileSystem.OpenDirectory(Shared);
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenFileBeneath(dir, Shared, "notes.txt", out _));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_folder_on_the_way_that_is_a_symlink_is_refused(bool walk)
    {
        using var mode = Mode(walk);
        var link = Path.Combine(Shared, "linked");
        Directory.CreateSymbolicLink(link, Outside);
        using var dir = ShareFileSystem.OpenDirectory(Shared);
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenFileBeneath(dir, Shared, "linked/secret.txt", out _));
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenShared(Shared, Path.Combine(link, "secret.txt"), out _));
        // The shared root itself swapped for a link: refused too.
        var swapped = Path.Combine(_root, "swapped");
        Directory.CreateSymbolicLink(swapped, Outside);
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenDirectory(swapped));
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenShared(swapped, Path.Combine(swapped, "secret.txt"), out _));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Dot_dot_never_leads_out(bool walk)
    {
        using var mode = Mode(walk);
        using var dir = ShareFileSystem.OpenDirectory(Shared);
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenFileBeneath(dir, Shared, "../outside/secret.txt", out _));
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenFileBeneath(dir, Shared, "sub/../../outside/secret.txt", out _));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_fifo_is_refused_at_once_without_waiting_for_a_writer(bool walk)
    {
        using var mode = Mode(walk);
        var fifo = Path.Combine(Shared, "pipe");
        MakeFifo(fifo);
        Assert.Equal(FileKind.Fifo, ShareFileSystem.Lstat(fifo)!.Value.Kind);
        using var dir = ShareFileSystem.OpenDirectory(Shared);
        // A blocking open would never return; the test fails on its time limit instead of hanging.
        var open = Task.Run(() => Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenFileBeneath(dir, Shared, "pipe", out _)));
        var e = await open.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Contains("FIFO", e.Message, StringComparison.Ordinal);
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenShared(Shared, fifo, out _));
    }

    [Fact]
    public void A_socket_is_reported_as_one_and_not_opened()
    {
        var path = Path.Combine(Shared, "sock");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        Assert.Equal(FileKind.Socket, ShareFileSystem.Lstat(path)!.Value.Kind);
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenShared(Shared, path, out _));
    }

    [Fact]
    public void A_device_is_reported_as_one()
    {
        Assert.Equal(FileKind.CharacterDevice, ShareFileSystem.Lstat("/dev/null")!.Value.Kind);
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.OpenShared("/dev", "/dev/null", out _));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Create_exclusive_never_replaces_and_never_writes_through_a_dangling_link(bool walk)
    {
        using var mode = Mode(walk);
        using var dir = ShareFileSystem.OpenDirectory(Shared);
        using (var created = ShareFileSystem.CreateExclusive(dir, Shared, "new.bin"))
        {
            RandomAccess.Write(created, "x"u8, 0);
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(Shared, "new.bin")));
        Assert.Throws<IOException>(() => ShareFileSystem.CreateExclusive(dir, Shared, "new.bin"));
        var target = Path.Combine(Outside, "authorized_keys");
        File.CreateSymbolicLink(Path.Combine(Shared, "dangling"), target);
        Assert.Throws<IOException>(() => ShareFileSystem.CreateExclusive(dir, Shared, "dangling"));
        Assert.False(File.Exists(target));
        Assert.Throws<SecureMeshException>(() => ShareFileSystem.CreateExclusive(dir, Shared, "../escape"));
    }

    [Fact]
    public void Rename_no_replace_moves_between_folder_handles_and_refuses_a_taken_name()
    {
        using var from = ShareFileSystem.OpenDirectory(Path.Combine(Shared, "sub"));
        using var to = ShareFileSystem.OpenDirectory(Outside);
        Assert.Equal(ShareFileSystem.RenameResult.Exists, ShareFileSystem.RenameNoReplace(from, "a.txt", to, "secret.txt"));
        Assert.Equal("secret", File.ReadAllText(Path.Combine(Outside, "secret.txt")));
        Assert.Equal(ShareFileSystem.RenameResult.Done, ShareFileSystem.RenameNoReplace(from, "a.txt", to, "moved.txt"));
        Assert.Equal("inside", File.ReadAllText(Path.Combine(Outside, "moved.txt")));
        Assert.False(File.Exists(Path.Combine(Shared, "sub", "a.txt")));
    }

    [Fact]
    public void Resolve_names_the_real_folder_and_keeps_a_missing_tail()
    {
        var link = Path.Combine(_root, "link");
        Directory.CreateSymbolicLink(link, Outside);
        Assert.Equal(Outside, ShareFileSystem.Resolve(link));
        Assert.Equal(Path.Combine(Outside, "later", "deeper"), ShareFileSystem.Resolve(Path.Combine(link, "later", "deeper")));
        Assert.Equal(Shared, ShareFileSystem.Resolve(Shared + "/sub/.."));
    }

    public void Dispose()
    {
        ShareFileSystem.ForceWalk = false;
        Directory.Delete(_root, recursive: true);
    }

    private static WalkMode Mode(bool walk) => new(walk);

    internal static void MakeFifo(string path)
    {
        using var process = Process.Start("mkfifo", [path]);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    private sealed class WalkMode : IDisposable
    {
        public WalkMode(bool walk) => ShareFileSystem.ForceWalk = walk;

        public void Dispose() => ShareFileSystem.ForceWalk = false;
    }
}
