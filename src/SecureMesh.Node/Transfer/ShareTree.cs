using System.Text;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Storage;

namespace SecureMesh.Node.Transfer;

/// <summary>What a walk of one shared path found: the regular files to index, and what was left out with the reason.</summary>
internal sealed record ShareScan(IReadOnlyList<(string Path, FileIdentity Identity)> Files, IReadOnlyList<SkippedEntry> Skipped);

/// <summary>
/// Walks a shared path. Every entry is <c>lstat</c>ed before anything is done with it: only regular files are listed
/// for indexing and only real folders are entered; symbolic links, FIFOs, sockets and devices are skipped (never
/// opened) and reported with the reason, as are hidden entries (names starting with '.') unless the share includes
/// them and whatever a <c>.smignore</c> file excludes. An excluded folder is reported once and not entered.
/// </summary>
internal static class ShareTree
{
    /// <summary>The reason given for a hidden entry.</summary>
    public const string HiddenReason = "hidden (share with --include-hidden to include it)";

    /// <summary>Walks <paramref name="root"/> (a resolved absolute path).</summary>
    public static ShareScan Scan(string root, bool includeHidden, CancellationToken cancellationToken)
    {
        var files = new List<(string, FileIdentity)>();
        var skipped = new List<SkippedEntry>();
        var top = ShareFileSystem.Lstat(root);
        switch (top?.Kind)
        {
            case null:
                break;
            case FileKind.Regular:
                files.Add((root, top.Value));
                break;
            case FileKind.Directory:
                Walk(root, root, string.Empty, includeHidden, [], files, skipped, cancellationToken);
                break;
            default:
                skipped.Add(new SkippedEntry(root, root, top.Value.Describe()));
                break;
        }
        files.Sort((x, y) => string.CompareOrdinal(x.Item1, y.Item1));
        return new ShareScan(files, skipped);
    }

    private static void Walk(string root, string directory, string relative, bool includeHidden, List<(string Base, IgnoreRules Rules)> rules,
        List<(string, FileIdentity)> files, List<SkippedEntry> skipped, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        string[] names;
        try
        {
            // Only names come from the listing; what each one is, is asked of lstat below.
            names = [.. Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).OfType<string>()];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            skipped.Add(new SkippedEntry(root, directory, $"cannot list the folder: {e.Message}"));
            return;
        }
        Array.Sort(names, StringComparer.Ordinal);
        var local = rules;
        if (names.Contains(IgnoreRules.FileName, StringComparer.Ordinal))
        {
            var own = ReadIgnoreFile(root, Path.Combine(directory, IgnoreRules.FileName), out var why);
            if (own is null)
            {
                // Rules that cannot be read might have excluded anything here: share nothing of this folder.
                skipped.Add(new SkippedEntry(root, directory, $"its {IgnoreRules.FileName} could not be read: {why}"));
                return;
            }
            if (own.Count > 0)
            {
                local = [.. rules, (relative, own)];
            }
        }
        foreach (var name in names)
        {
            var path = Path.Combine(directory, name);
            var rel = relative.Length == 0 ? name : relative + "/" + name;
            if (name.StartsWith('.') && !includeHidden)
            {
                if (name != IgnoreRules.FileName)
                {
                    skipped.Add(new SkippedEntry(root, path, HiddenReason));
                }
                continue;
            }
            FileIdentity? seen;
            try
            {
                seen = ShareFileSystem.Lstat(path);
            }
            catch (SecureMeshException e)
            {
                skipped.Add(new SkippedEntry(root, path, e.Message));
                continue;
            }
            if (seen is not { } id)
            {
                continue; // gone since it was listed
            }
            if (id.Kind is FileKind.Regular or FileKind.Directory && IsIgnored(local, rel, id.Kind == FileKind.Directory))
            {
                skipped.Add(new SkippedEntry(root, path, $"excluded by {IgnoreRules.FileName}"));
                continue;
            }
            switch (id.Kind)
            {
                case FileKind.Regular:
                    files.Add((path, id));
                    break;
                case FileKind.Directory:
                    Walk(root, path, rel, includeHidden, local, files, skipped, cancellationToken);
                    break;
                default:
                    skipped.Add(new SkippedEntry(root, path, id.Describe() + (id.Kind == FileKind.SymbolicLink ? "; links are never followed" : "; only regular files are shared")));
                    break;
            }
        }
    }

    private static bool IsIgnored(List<(string Base, IgnoreRules Rules)> rules, string relative, bool isDirectory)
    {
        bool? verdict = null;
        // A deeper .smignore overrides one further up.
        foreach (var (baseDir, set) in rules)
        {
            var below = baseDir.Length == 0 ? relative : relative[(baseDir.Length + 1)..];
            verdict = set.Match(below, isDirectory) ?? verdict;
        }
        return verdict == true;
    }

    private static IgnoreRules? ReadIgnoreFile(string root, string path, out string? why)
    {
        why = null;
        try
        {
            // The rules file is inside the shared tree: opened like any shared file (never a link, never a FIFO).
            using var handle = ShareFileSystem.OpenShared(root, path, out var id);
            var buffer = new byte[(int)Math.Min(id.Size, IgnoreRules.MaxBytes)];
            var done = 0;
            while (done < buffer.Length)
            {
                var read = RandomAccess.Read(handle, buffer.AsSpan(done), done);
                if (read == 0)
                {
                    break;
                }
                done += read;
            }
            return IgnoreRules.Parse(Encoding.UTF8.GetString(buffer, 0, done));
        }
        catch (Exception e) when (e is SecureMeshException or IOException or UnauthorizedAccessException)
        {
            why = e.Message;
            return null;
        }
    }
}
