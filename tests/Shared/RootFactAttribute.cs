namespace SecureMesh.TestSupport;

/// <summary>
/// A test that needs root (network namespaces, connecting as another uid). Run as root (CI) it runs like any
/// <see cref="FactAttribute"/>; for any other user xunit reports it as skipped, with the reason in one line.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute(string needs)
    {
        if (!IsRoot)
        {
            Skip = $"needs root ({needs}); run ./test.sh as root to include it";
        }
    }

    /// <summary>True when the process runs with effective uid 0 (the second field of the Uid line in /proc/self/status).</summary>
    public static bool IsRoot { get; } = ReadEffectiveUid() == "0";

    private static string? ReadEffectiveUid()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            var fields = line?.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return fields is { Length: > 2 } ? fields[2] : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
