/* http_date.c - HTTP-date conversions (see http_date.h).
 *
 * Calendar arithmetic uses the days-from-civil algorithm for the proleptic
 * Gregorian calendar (400-year eras of 146097 days), so formatting and
 * parsing are exact inverses and independent of the C library's time zone
 * handling.
 */
#include "http_date.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define MIN_TIME INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define MAX_TIME INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

static const char day_short[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const day_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of the date y-m-d (m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

struct civil {
    int64_t year;
    int month; /* 1..12 */
    int day;   /* 1..31 */
};

static struct civil civil_from_days(int64_t z)
{
    struct civil c;
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c.day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c.month = (int)(mp < 10 ? mp + 3 : mp - 9);
    c.year = yoe + era * 400 + (c.month <= 2);
    return c;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

size_t http_date_format(time_t t, char out[HTTP_DATE_LEN + 1])
{
    int64_t s = (int64_t)t;
    if (s < MIN_TIME)
        s = MIN_TIME;
    if (s > MAX_TIME)
        s = MAX_TIME;
    int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t secs = s - days * 86400;
    struct civil c = civil_from_days(days);
    int wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */

    memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", HTTP_DATE_LEN + 1);
    memcpy(out, day_short[wday], 3);
    put2(out + 5, c.day);
    memcpy(out + 8, month_names[c.month - 1], 3);
    put2(out + 12, (int)(c.year / 100));
    put2(out + 14, (int)(c.year % 100));
    put2(out + 17, (int)(secs / 3600));
    put2(out + 20, (int)(secs / 60 % 60));
    put2(out + 23, (int)(secs % 60));
    return HTTP_DATE_LEN;
}

/* ---- parsing ---------------------------------------------------------- */

struct cursor {
    const char *p;
    const char *end;
};

static bool lit(struct cursor *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Exactly n digits. */
static bool digits(struct cursor *c, int n, int *v)
{
    if (c->end - c->p < n)
        return false;
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return false;
        *v = *v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    return true;
}

static bool month(struct cursor *c, int *m)
{
    for (int i = 0; i < 12; i++) {
        if (lit(c, month_names[i])) {
            *m = i + 1;
            return true;
        }
    }
    return false;
}

/* The day name, short ("Sun") or long ("Sunday"). */
static bool day_name(struct cursor *c, bool want_long)
{
    for (int i = 0; i < 7; i++) {
        if (lit(c, want_long ? day_long[i] : day_short[i]))
            return true;
    }
    return false;
}

struct fields {
    int year, month, day, hour, min, sec;
};

static bool time_of_day(struct cursor *c, struct fields *f)
{
    return digits(c, 2, &f->hour) && lit(c, ":") && digits(c, 2, &f->min) && lit(c, ":") &&
           digits(c, 2, &f->sec);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool imf_fixdate(struct cursor *c, struct fields *f)
{
    return day_name(c, false) && lit(c, ", ") && digits(c, 2, &f->day) && lit(c, " ") &&
           month(c, &f->month) && lit(c, " ") && digits(c, 4, &f->year) && lit(c, " ") &&
           time_of_day(c, f) && lit(c, " GMT");
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" */
static bool rfc850_date(struct cursor *c, struct fields *f)
{
    if (!(day_name(c, true) && lit(c, ", ") && digits(c, 2, &f->day) && lit(c, "-") &&
          month(c, &f->month) && lit(c, "-") && digits(c, 2, &f->year) && lit(c, " ") &&
          time_of_day(c, f) && lit(c, " GMT")))
        return false;
    f->year += f->year < 70 ? 2000 : 1900;
    return true;
}

/* "Sun Nov  6 08:49:37 1994" (day padded with a space, or two digits) */
static bool asctime_date(struct cursor *c, struct fields *f)
{
    if (!(day_name(c, false) && lit(c, " ") && month(c, &f->month) && lit(c, " ")))
        return false;
    if (!(lit(c, " ") ? digits(c, 1, &f->day) : digits(c, 2, &f->day)))
        return false;
    return lit(c, " ") && time_of_day(c, f) && lit(c, " ") && digits(c, 4, &f->year);
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid(const struct fields *f)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (f->month < 1 || f->month > 12 || f->day < 1 || f->day > mdays[f->month - 1])
        return false;
    if (f->month == 2 && f->day == 29 && !leap(f->year))
        return false;
    return f->year >= 1 && f->hour < 24 && f->min < 60 && f->sec <= 60; /* 60: leap second */
}

int http_date_parse(const char *s, size_t n, time_t *t)
{
    bool (*const forms[3])(struct cursor *, struct fields *) = {imf_fixdate, rfc850_date,
                                                                asctime_date};
    for (int i = 0; i < 3; i++) {
        struct cursor c = {s, s + n};
        struct fields f;
        if (forms[i](&c, &f) && c.p == c.end && valid(&f)) {
            int64_t days = days_from_civil(f.year, f.month, f.day);
            *t = (time_t)(days * 86400 + f.hour * 3600 + f.min * 60 + f.sec);
            return 0;
        }
    }
    return -1;
}

/* ---- the per-second cache --------------------------------------------- */

const char *http_date_cached(struct http_date_cache *c, time_t now)
{
    if (c->value[0] == '\0' || c->sec != now) {
        http_date_format(now, c->value);
        c->sec = now;
    }
    return c->value;
}
