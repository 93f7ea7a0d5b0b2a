using SecureMesh.Node.Backup;

namespace SecureMesh.Node.Tests.Backup;

/// <summary>Versions: the keep policies, and the quota pushing out the oldest versions but never a file's newest.</summary>
public sealed class BackupVersionTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Staggered_keeps_every_version_for_an_hour_then_one_an_hour_a_day_and_a_week()
    {
        var times = new List<DateTimeOffset>
        {
            Now, Now.AddMinutes(-10), Now.AddMinutes(-50),            // the last hour: all kept
            Now.AddHours(-3), Now.AddHours(-3).AddMinutes(-20),     // same hour: the older one goes
            Now.AddDays(-5), Now.AddDays(-5).AddHours(-2),          // same day: the older one goes
            Now.AddDays(-60), Now.AddDays(-62),                     // same week, after 30 days: the older one goes
            Now.AddDays(-75),                                       // another week: kept
        };
        var dropped = BackupKeepPolicy.ToDrop("staggered", times, Now);
        Assert.Equal([Now.AddDays(-62), Now.AddDays(-5).AddHours(-2), Now.AddHours(-3).AddMinutes(-20)], dropped.Order());
        Assert.DoesNotContain(Now, dropped);
    }

    [Fact]
    public void A_count_keeps_the_newest_n_and_forever_keeps_all()
    {
        var times = Enumerable.Range(0, 6).Select(i => Now.AddDays(-i)).ToList();
        Assert.Equal([Now.AddDays(-5), Now.AddDays(-4), Now.AddDays(-3)], BackupKeepPolicy.ToDrop("3", times, Now).Order());
        Assert.Empty(BackupKeepPolicy.ToDrop("forever", times, Now));
        Assert.Equal(5, BackupKeepPolicy.ToDrop("1", times, Now).Count);
        Assert.Throws<Core.SecureMeshException>(() => BackupKeepPolicy.Parse("0"));
        Assert.Throws<Core.SecureMeshException>(() => BackupKeepPolicy.Parse("weekly"));
    }

    [Fact]
    public async Task A_full_quota_drops_the_oldest_versions_first_and_never_the_newest()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        await using var alice = await BackupNode.StartAsync();
        await using var bob = await BackupNode.StartAsync();
        alice.Trust(bob);
        bob.Trust(alice);
        // Room for three 4 KiB chunks with the catalog and the trust-store export, not four.
        bob.Db.Backup.Offer(alice.PeerId, 16_000);
        var folder = Directory.CreateTempSubdirectory("securemesh-versions-").FullName;
        try
        {
            var file = Path.Combine(folder, "draft.txt");
            alice.Db.Backup.AddSet(folder, [bob.PeerId], 1, "forever");
            for (var v = 1; v <= 4; v++)
            {
                await File.WriteAllTextAsync(file, $"draft number {v}", ct);
                File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(v));
                var outcome = Assert.Single(await alice.Host.Backup.RunAsync(null, ct));
                Assert.Null(outcome.Error);
                await Task.Delay(5, ct);
            }
            var versions = BackupStatusReport.Versions(alice.Db, file);
            Assert.Equal(3, versions.Count);
            Assert.Equal(alice.Db.Backup.ListVersions().Max(v => v.Time), versions.Max(v => v.Time));
            Assert.Contains(alice.Db.Audit.List(), e => e.Event == "backup.version-dropped");
            Assert.True(bob.Db.Backup.Used(alice.PeerId) <= 16_000);

            // A quota that cannot hold even the newest version: a clear failure, and the newest is still kept.
            bob.Db.Backup.Offer(alice.PeerId, 3_000);
            await File.WriteAllTextAsync(file, "draft number 5", ct);
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(10));
            var full = Assert.Single(await alice.Host.Backup.RunAsync(null, ct));
            Assert.Contains("only the newest", full.Error, StringComparison.Ordinal);
            Assert.Single(BackupStatusReport.Versions(alice.Db, file));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
