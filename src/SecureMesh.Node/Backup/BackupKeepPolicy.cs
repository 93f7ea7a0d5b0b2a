using System.Globalization;
using SecureMesh.Core;

namespace SecureMesh.Node.Backup;

/// <summary>
/// Which old versions of a file are kept: <c>forever</c>; a count N (the newest N); or <c>staggered</c> (as Syncthing's
/// staggered versioning: every version for the first hour, one an hour for a day, one a day for 30 days, one a week after).
/// The newest version is always kept.
/// </summary>
public static class BackupKeepPolicy
{
    public const string Staggered = "staggered";
    public const string Forever = "forever";

    /// <summary>Checks a policy text; InvalidInput (a usage error) when it is none of the three.</summary>
    public static string Parse(string? text)
    {
        var value = (text ?? Staggered).Trim().ToLowerInvariant();
        if (value is Staggered or Forever || (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= 100_000))
        {
            return value;
        }
        throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"--keep takes staggered, forever or a number of versions (1 or more), not '{text}'");
    }

    /// <summary>The versions (times, any order) to drop at <paramref name="now"/>.</summary>
    public static IReadOnlyList<DateTimeOffset> ToDrop(string policy, IReadOnlyList<DateTimeOffset> times, DateTimeOffset now)
    {
        var newestFirst = times.OrderByDescending(t => t).ToList();
        if (newestFirst.Count <= 1 || policy == Forever)
        {
            return [];
        }
        if (int.TryParse(policy, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            return newestFirst.Skip(Math.Max(1, count)).ToList();
        }
        var drop = new List<DateTimeOffset>();
        var lastKept = newestFirst[0];
        foreach (var time in newestFirst.Skip(1))
        {
            var age = now - time;
            var spacing = age <= TimeSpan.FromHours(1) ? TimeSpan.Zero
                : age <= TimeSpan.FromDays(1) ? TimeSpan.FromHours(1)
                : age <= TimeSpan.FromDays(30) ? TimeSpan.FromDays(1)
                : TimeSpan.FromDays(7);
            if (lastKept - time < spacing)
            {
                drop.Add(time);
            }
            else
            {
                lastKept = time;
            }
        }
        return drop;
    }
}
